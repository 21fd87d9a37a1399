package http

import (
	"context"
	"encoding/json"
	"time"
)

// Backend is everything the HTTP API needs from the C2 application service.
// The composition root passes the service (or the adapter of this package
// around it); tests pass a fake. Every mutating call receives the Caller so
// the events it produces are attributed to the token and the request.
//
// References to clients are names or lowercase hex ids; the backend resolves
// them. Topics are always names. Cursors are the backend's own; this package
// wraps them into opaque strings before they reach a user.
type Backend interface {
	// Section 9 operations.
	NewClient(ctx context.Context, by Caller, req NewClientRequest) (Client, error)
	// RemoveClient forgets a client; with resetFirst it first queues
	// ResetTopics to the device.
	RemoveClient(ctx context.Context, by Caller, client string, resetFirst bool) error
	NewClientKey(ctx context.Context, by Caller, client string) error
	ResetClient(ctx context.Context, by Caller, client string) error
	// NewTopic creates a topic; an existing one is refused with an error
	// wrapping domain.ErrTopicExists (rotated is kept for the answer's
	// shape and is false).
	NewTopic(ctx context.Context, by Caller, topic string) (rotated bool, err error)
	// RotateTopic gives an existing topic a new key (domain.ErrUnknownTopic
	// for a missing one).
	RotateTopic(ctx context.Context, by Caller, topic string) error
	RemoveTopic(ctx context.Context, by Caller, topic string) error
	AttachClient(ctx context.Context, by Caller, client, topic string) error
	DetachClient(ctx context.Context, by Caller, client, topic string) error
	ResetClientPubKeys(ctx context.Context, by Caller, client string) error
	SendClientPubKey(ctx context.Context, by Caller, dst, src string) error
	RemoveClientPubKey(ctx context.Context, by Caller, dst, src string) error
	NewC2Key(ctx context.Context, by Caller) error
	// C2PublicKey returns the C2 public key, or an error wrapping
	// domain.ErrNoC2Key (SK mode).
	C2PublicKey(ctx context.Context) (C2Key, error)

	// Queries, served from projections.
	Client(ctx context.Context, client string) (Client, error)
	Clients(ctx context.Context, p PageRequest) (Page[Client], error)
	CountClients(ctx context.Context) (int, error)
	Topic(ctx context.Context, topic string) (Topic, error)
	Topics(ctx context.Context, p PageRequest) (Page[Topic], error)
	CountTopics(ctx context.Context) (int, error)
	TopicClients(ctx context.Context, topic string, p PageRequest) (Page[Client], error)
	ClientTopics(ctx context.Context, client string, p PageRequest) (Page[Topic], error)
	Audit(ctx context.Context, q AuditQuery) (Page[AuditEntry], error)
	PendingDeliveries(ctx context.Context, client string, p PageRequest) (Page[Delivery], error)
	// Fleet counts the clients by sync status (Client fills Client.Sync).
	Fleet(ctx context.Context) (FleetSummary, error)

	// Resync queues what a device lacks (full: every current key) and
	// returns the number of commands queued; ResyncAll does it for every
	// client.
	Resync(ctx context.Context, by Caller, client string, full bool) (int, error)
	ResyncAll(ctx context.Context, by Caller, full bool) (int, error)
	// Release lets the commands of a device never seen go to an external
	// broker (device.released.v1); ReleaseAll does it for every device
	// neither seen nor released.
	Release(ctx context.Context, by Caller, client string) (ReleaseResult, error)
	ReleaseAll(ctx context.Context, by Caller) (ReleaseResult, error)

	// Subscribe calls fn for every event with global position >= from, first
	// the stored ones then live ones, in order, until ctx is done or fn
	// returns an error. It has the contract of eventstore.Store.Subscribe.
	Subscribe(ctx context.Context, from uint64, fn func(Event) error) error

	// Protect and Unprotect apply the topic's current key (Unprotect also
	// tries the previous key within the transition period).
	Protect(ctx context.Context, by Caller, topic string, payload []byte) ([]byte, error)
	Unprotect(ctx context.Context, by Caller, topic string, protected []byte) ([]byte, error)

	// Tokens. CreateToken returns the secret once; only its hash is kept.
	CreateToken(ctx context.Context, by Caller, name string, role Role) (secret string, t Token, err error)
	Tokens(ctx context.Context) ([]Token, error)
	RevokeToken(ctx context.Context, by Caller, name string) error
	// TokenByHash returns the live (not revoked) token whose secret hashes
	// to SHA-256 sum, or an error wrapping domain.ErrUnknownToken.
	TokenByHash(ctx context.Context, sum [32]byte) (Token, error)

	// Key export, for admins only: the only calls returning key material.
	ExportClientKey(ctx context.Context, by Caller, client string) ([]byte, error)
	ExportTopicKey(ctx context.Context, by Caller, topic string) ([]byte, error)
}

// BatchAttacher is optionally implemented by a Backend that can link many
// clients to a topic in one atomic decision. The batch route tries it first
// and falls back to one AttachClient per client (to report each failure)
// only when the whole batch is refused.
type BatchAttacher interface {
	AttachClients(ctx context.Context, by Caller, topic string, clients []string) error
}

// Caller identifies who asks: the actor ("token:<name>") recorded in the
// events' metadata and the request id that becomes their correlation id.
type Caller struct {
	Actor         string
	CorrelationID string
}

// Role is the authority of an API token.
type Role string

// The roles, from most to least powerful.
const (
	// RoleAdmin may do everything, including token management and key export.
	RoleAdmin Role = "admin"
	// RoleOperator may run every key operation but manage no token and
	// export no key.
	RoleOperator Role = "operator"
	// RoleReader may only read (GET).
	RoleReader Role = "reader"
)

// rank orders roles so a route can require "at least" a role.
func (r Role) rank() int {
	switch r {
	case RoleAdmin:
		return 3
	case RoleOperator:
		return 2
	case RoleReader:
		return 1
	}
	return 0
}

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// NewClientRequest is new_client: a name or a hex id, the client's key (SK:
// 32-byte symmetric key) or public key (PK), and its rotation role.
type NewClientRequest struct {
	Name      string
	ID        []byte
	Key       []byte
	PublicKey []byte
	Role      string // "publisher", "consumer" or "both" ("" = both)
	// Replace allows an existing client: its key is replaced the way a
	// rotation does it and its role is kept. Without it an existing client
	// is refused with an error wrapping domain.ErrClientExists.
	Replace bool
}

// Client is the public view of a client: never its key.
type Client struct {
	Name       string    `json:"name,omitempty"`
	ID         string    `json:"id"` // lowercase hex
	Role       string    `json:"role,omitempty"`
	KeyVersion uint64    `json:"key_version,omitempty"`
	Topics     int       `json:"topics"`
	Pending    int       `json:"pending"` // queued commands not yet delivered
	CreatedAt  time.Time `json:"created_at,omitzero"`
	UpdatedAt  time.Time `json:"updated_at,omitzero"`
	// Sync is set by GET of one client, not in lists.
	Sync *ClientSync `json:"sync,omitempty"`
}

// ClientSync is what the C2 wants a device to hold against the evidence
// it has. Versions are key versions (stream versions of the key events).
// "accepted": a broker took the command carrying the key; "confirmed":
// the device's own MQTT session took it. Neither is a device's
// acknowledgement of having processed it.
type ClientSync struct {
	// Status: never_seen (not connected since its registration),
	// in_sync (nothing pending, every desired key accepted or confirmed)
	// or lagging.
	Status string `json:"status"`
	// Evidence grades an in_sync status: confirmed (every key confirmed)
	// or accepted (some only accepted). Absent otherwise.
	Evidence  string    `json:"evidence,omitempty"`
	Seen      bool      `json:"seen"`
	FirstSeen time.Time `json:"first_seen,omitzero"`
	// Released: never seen, but an operator released its commands (an
	// external broker gets them without waiting for a sighting).
	Released      bool      `json:"released,omitempty"`
	Pending       int       `json:"pending"`
	OldestPending time.Time `json:"oldest_pending,omitzero"`
	// Identity is the client key (SK: rotated with SetIdKey; the
	// registered key counts as confirmed).
	Identity KeySync `json:"identity"`
	// C2Key is the C2 public key the device should hold (PK mode only).
	C2Key  *KeySync    `json:"c2key,omitempty"`
	Topics []TopicSync `json:"topics"`
	// PubKeys: the peers whose public keys the device was sent (PK mode).
	PubKeys []PubKeySync `json:"pubkeys,omitempty"`
}

// PubKeySync is the public key of one peer: versions are the peer's key
// versions; desired 0 means the device should not hold it (removed or
// reset), accepted / confirmed 0 that the newest command of that grade
// left it without.
type PubKeySync struct {
	Client string `json:"client"` // the peer's name, or its id
	ID     string `json:"id"`
	// Removed: the peer was removed (its key is not resent; remove it
	// with remove_client_pubkey).
	Removed bool `json:"removed,omitempty"`
	KeySync
}

// KeySync is one key: desired version, newest accepted, newest confirmed
// (0: none).
type KeySync struct {
	Desired   uint64 `json:"desired"`
	Accepted  uint64 `json:"accepted"`
	Confirmed uint64 `json:"confirmed"`
}

// TopicSync is the key of one linked topic.
type TopicSync struct {
	Topic string `json:"topic"`
	Hash  string `json:"hash"` // topichash, hex
	KeySync
}

// FleetSummary counts the registered clients by sync status; Pending is
// the number of queued commands.
type FleetSummary struct {
	Clients   int `json:"clients"`
	InSync    int `json:"in_sync"`
	Lagging   int `json:"lagging"`
	NeverSeen int `json:"never_seen"`
	Pending   int `json:"pending"`
	// Waiting: commands of never-seen clients nobody released (an
	// external broker gets them at the device's first sighting or a
	// release). Released: never-seen clients an operator released.
	Waiting  int `json:"waiting"`
	Released int `json:"released"`
}

// ReleaseResult is the answer to a release: the devices newly released
// and the commands of theirs that may go to the broker now.
type ReleaseResult struct {
	Client   string `json:"client,omitempty"`
	Released int    `json:"released"`
	Commands int    `json:"commands"`
}

// ResyncResult is the answer to a resync: the number of commands queued.
type ResyncResult struct {
	Client string `json:"client,omitempty"`
	Queued int    `json:"queued"`
}

// C2Key is the public half of the C2 key pair (PK mode): what a PK device
// needs to authenticate commands. It is public, so readers may fetch it.
type C2Key struct {
	Suite      string `json:"suite"`
	KeyVersion uint64 `json:"key_version"`
	PublicKey  string `json:"public_key"` // lowercase hex
}

// Topic is the public view of a topic: never its key.
type Topic struct {
	Name       string    `json:"name"`
	Hash       string    `json:"hash"` // lowercase hex topichash
	KeyVersion uint64    `json:"key_version,omitempty"`
	Clients    int       `json:"clients"`
	CreatedAt  time.Time `json:"created_at,omitzero"`
	RotatedAt  time.Time `json:"rotated_at,omitzero"`
}

// PageRequest asks for at most Limit items after Cursor (empty: from the
// start). Limit is already defaulted and clamped by this package.
type PageRequest struct {
	Cursor string
	Limit  int
}

// Page is one page of results; Next is empty on the last page.
type Page[T any] struct {
	Items []T
	Next  string
}

// AuditQuery filters the audit trail; zero fields do not filter.
type AuditQuery struct {
	Client string    // name or hex id
	Topic  string    // topic name
	Actor  string    // e.g. "token:ops"
	Type   string    // event wire type
	From   time.Time // inclusive
	To     time.Time // exclusive
	Page   PageRequest
}

// AuditEntry is one attributed operation of the audit trail.
type AuditEntry struct {
	Position      uint64    `json:"position"`
	Time          time.Time `json:"time"`
	Type          string    `json:"type"`
	Actor         string    `json:"actor"`
	EventID       string    `json:"event_id,omitempty"`
	Stream        string    `json:"stream,omitempty"`
	Client        string    `json:"client,omitempty"`    // name, when known
	ClientID      string    `json:"client_id,omitempty"` // hex
	Topic         string    `json:"topic,omitempty"`     // name, when known
	TopicHash     string    `json:"topic_hash,omitempty"`
	KeyVersion    uint64    `json:"key_version,omitempty"`
	Command       string    `json:"command,omitempty"`
	Recipients    int       `json:"recipients,omitempty"`
	CorrelationID string    `json:"correlation_id,omitempty"`
	CausationID   string    `json:"causation_id,omitempty"`
	Summary       string    `json:"summary,omitempty"`
}

// Delivery is a queued command not yet settled: neither accepted by a
// broker, nor confirmed by the device's session, nor failed.
type Delivery struct {
	CommandID  string    `json:"command_id"`
	Seq        uint64    `json:"seq,omitempty"` // place in the global delivery order
	Client     string    `json:"client"`        // hex id
	Command    string    `json:"command"`
	Topic      string    `json:"topic,omitempty"` // topic hash, hex
	QueuedAt   time.Time `json:"queued_at"`
	Position   uint64    `json:"position,omitempty"`
	KeyVersion uint64    `json:"key_version,omitempty"` // key protecting the command
}

// Event is one event of the log as shown to API users. Data is the public
// JSON rendering of the payload: sealed fields are omitted by the backend.
type Event struct {
	Position      uint64          `json:"position"`
	Stream        string          `json:"stream"`
	Version       uint64          `json:"version"`
	Type          string          `json:"type"`
	Time          time.Time       `json:"time"`
	Actor         string          `json:"actor,omitempty"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	CausationID   string          `json:"causation_id,omitempty"`
	Data          json.RawMessage `json:"data,omitempty"`
}

// Token is an API token without its secret.
type Token struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	CreatedBy string    `json:"created_by,omitempty"`
	// Hash is SHA-256 of the secret. It is compared in constant time by the
	// auth middleware and never serialised.
	Hash [32]byte `json:"-"`
}
