package domain

import (
	"encoding/hex"
	"fmt"

	"github.com/e4c2/e4c2/suites/core"
)

// ID is a 16-byte client id or topic hash (docs/PROTOCOL.md section 1).
type ID [core.IDLen]byte

// String returns the lowercase hex form used in stream names and APIs.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is all zero (unset).
func (id ID) IsZero() bool { return id == ID{} }

// IDFromBytes copies a 16-byte id.
func IDFromBytes(b []byte) (ID, error) {
	var id ID
	if err := core.ValidateID(b); err != nil {
		return id, err
	}
	copy(id[:], b)
	return id, nil
}

// ParseID parses the lowercase (or uppercase) hex form of an id.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*core.IDLen {
		return id, fmt.Errorf("%w: id must be %d hex characters", core.ErrInvalidName, 2*core.IDLen)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("%w: id is not hex", core.ErrInvalidName)
	}
	return id, nil
}

// ClientID returns the id of a client name, SHA3-256(name)[:16].
func ClientID(name string) ID { return ID(core.HashID([]byte(name))) }

// TopicHash returns the hash of a topic, SHA3-256(topic)[:16].
func TopicHash(topic string) ID { return ID(core.HashID([]byte(topic))) }

// Role says whether a client publishes, consumes or both on its topics. It
// orders the delivery of a topic rotation: consumers first, then clients
// doing both, then publishers, so that receivers know the new key before
// senders use it. The numeric order is that delivery order.
type Role uint8

// The client roles. The values are persisted.
const (
	RoleConsumer  Role = 1
	RoleBoth      Role = 2
	RolePublisher Role = 3
)

// String returns "consumer", "both" or "publisher".
func (r Role) String() string {
	switch r {
	case RoleConsumer:
		return "consumer"
	case RoleBoth:
		return "both"
	case RolePublisher:
		return "publisher"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool { return r >= RoleConsumer && r <= RolePublisher }

// ParseRole parses a role name; the empty string is the default, both.
func ParseRole(s string) (Role, error) {
	switch s {
	case "", "both":
		return RoleBoth, nil
	case "consumer", "sub", "subscriber":
		return RoleConsumer, nil
	case "publisher", "pub":
		return RolePublisher, nil
	}
	return 0, fmt.Errorf("%w: %q (valid roles: consumer, both, publisher)", ErrInvalidRole, s)
}

// TokenRole is the authority of an API token.
type TokenRole uint8

// The token roles. The values are persisted.
const (
	TokenAdmin    TokenRole = 1 // everything, including tokens
	TokenOperator TokenRole = 2 // key-management operations
	TokenReader   TokenRole = 3 // queries only
)

// String returns "admin", "operator" or "reader".
func (r TokenRole) String() string {
	switch r {
	case TokenAdmin:
		return "admin"
	case TokenOperator:
		return "operator"
	case TokenReader:
		return "reader"
	}
	return fmt.Sprintf("tokenrole(%d)", uint8(r))
}

// Valid reports whether r is one of the three token roles.
func (r TokenRole) Valid() bool { return r >= TokenAdmin && r <= TokenReader }

// ParseTokenRole parses "admin", "operator" or "reader".
func ParseTokenRole(s string) (TokenRole, error) {
	switch s {
	case "admin":
		return TokenAdmin, nil
	case "operator":
		return TokenOperator, nil
	case "reader":
		return TokenReader, nil
	}
	return 0, fmt.Errorf("%w: %q (valid roles: admin, operator, reader)", ErrInvalidRole, s)
}

// Stream names. See the package documentation for the design.
const (
	ClientStreamPrefix   = "client-"
	TopicStreamPrefix    = "topic-"
	TokenStreamPrefix    = "token-"
	DeliveryStreamPrefix = "delivery-"
	C2KeyStream          = "c2key"
	// ExportStream records key exports (key.exported.v1), appended with
	// eventstore.Any: an export decides nothing.
	ExportStream = "exports"
	// KeyUseStream records the uses of topic keys by the protect/unprotect
	// helpers (key.used.v1), appended with eventstore.Any like exports.
	KeyUseStream = "keyuse"
)

// ClientStream returns "client-<hex id>".
func ClientStream(id ID) string { return ClientStreamPrefix + id.String() }

// TopicStream returns "topic-<hex hash>".
func TopicStream(hash ID) string { return TopicStreamPrefix + hash.String() }

// TokenStream returns "token-<hex SHA3-256(name)[:16]>": names are free
// UTF-8, stream names should not be.
func TokenStream(name string) string {
	return TokenStreamPrefix + ID(core.HashID([]byte(name))).String()
}

// DeliveryStream returns "delivery-<hex id>".
func DeliveryStream(id ID) string { return DeliveryStreamPrefix + id.String() }

// QueueRef names one queued command: the event id of the command.queued
// event (16 bytes) and the index of the recipient in it.
type QueueRef struct {
	Event ID
	Index uint32
}

// String returns "<hex event id>/<index>".
func (q QueueRef) String() string { return fmt.Sprintf("%s/%d", q.Event, q.Index) }

// EventRefID converts an eventstore event id (lowercase hex of 16 bytes) to
// the 16 bytes a QueueRef holds; an id of any other form is hashed, so every
// store's ids work.
func EventRefID(id string) ID {
	if len(id) == 2*core.IDLen {
		var out ID
		if _, err := hex.Decode(out[:], []byte(id)); err == nil {
			return out
		}
	}
	return ID(core.HashID([]byte(id)))
}
