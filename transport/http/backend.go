package http

import (
	"context"
	"time"

	"github.com/e4c2/e4c2/transport/http/apitypes"
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

// The views the backend returns are the API's JSON bodies themselves
// (transport/http/apitypes, shared with the Go client): the handlers write
// them as they are, so what the backend fills is what a client reads.
type (
	// Client is the public view of a client: never its key.
	Client = apitypes.Client
	// ClientSync is what the C2 wants a device to hold against the
	// evidence it has.
	ClientSync = apitypes.ClientSync
	// KeySync is one key: desired, newest accepted, newest confirmed.
	KeySync = apitypes.KeySync
	// TopicSync is the key of one linked topic.
	TopicSync = apitypes.TopicSync
	// FleetSummary counts the registered clients by sync status.
	FleetSummary = apitypes.Fleet
	// ResyncResult is the answer to a resync.
	ResyncResult = apitypes.ResyncResult
	// ReleaseResult is the answer to a release.
	ReleaseResult = apitypes.ReleaseResult
	// PubKeySync is the public key of one peer a PK device was sent.
	PubKeySync = apitypes.PubKeySync
	// C2Key is the public half of the C2 key pair (PK mode).
	C2Key = apitypes.C2Key
	// Topic is the public view of a topic: never its key.
	Topic = apitypes.Topic
	// AuditEntry is one attributed operation of the audit trail.
	AuditEntry = apitypes.AuditEntry
	// Delivery is a queued command not yet settled.
	Delivery = apitypes.Delivery
	// Event is one event of the log as shown to API users (sealed fields
	// omitted by the backend).
	Event = apitypes.Event
)

// PageRequest asks for at most Limit items after Cursor (empty: from the
// start). Limit is already defaulted and clamped by this package.
type PageRequest struct {
	Cursor string
	Limit  int
}

// Page is one page of results as the backend returns it: Next is the
// backend's own cursor (empty on the last page), which the handlers wrap
// into the opaque cursor of an apitypes.Page.
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

// Token is an API token as the backend knows it: with the hash of its
// secret, which the auth middleware compares in constant time. It is not
// a JSON body: the handlers answer with apitypes.Token, which has no hash.
type Token struct {
	Name      string
	Role      Role
	CreatedAt time.Time
	CreatedBy string
	// Hash is SHA-256 of the secret.
	Hash [32]byte
}
