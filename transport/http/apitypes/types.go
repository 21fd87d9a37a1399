package apitypes

import (
	"encoding/json"
	"time"
)

// Status is the answer of the health and readiness probes.
type Status struct {
	Status string `json:"status"` // "ok" or "ready"
}

// Count is the answer of the count routes.
type Count struct {
	Count int `json:"count"`
}

// Error is the body of every error answer.
type Error struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the API's error object: a stable code to branch on, a
// human-readable message and the request id to quote in a report.
type ErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
	// Details is structured help for some codes, e.g. the field, line and
	// column of a rule expression that does not compile.
	Details any `json:"details,omitempty"`
}

// Page is one page of a list; Next is the opaque cursor of the next page,
// empty on the last one.
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// NewClient is the body of new_client. Key (SK) and PublicKey (PK) are
// lowercase hex; give exactly one of them, and a name or an id.
type NewClient struct {
	Name      string `json:"name,omitempty"`
	ID        string `json:"id,omitempty"`
	Key       string `json:"key,omitempty"`
	PublicKey string `json:"public_key,omitempty"`
	Role      string `json:"role,omitempty"` // "publisher", "consumer" or "both" ("" = both)
	// Replace allows an existing client: its role is kept and its key is
	// replaced the way a rotation does it. Without it the server refuses
	// an existing client (409 client_exists).
	Replace bool `json:"replace,omitempty"`
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

// Fleet counts the registered clients by sync status; Pending is the
// number of queued commands.
type Fleet struct {
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
	Client   string `json:"client,omitempty"` // the reference as given
	Released int    `json:"released"`
	Commands int    `json:"commands"`
}

// ResyncResult is the answer to a resync: the number of commands queued.
type ResyncResult struct {
	Client string `json:"client,omitempty"` // the reference as given
	Queued int    `json:"queued"`
}

// C2Key is the public half of the C2 key pair (PK mode): what a PK device
// needs to authenticate commands. It is public, so readers may fetch it.
type C2Key struct {
	Suite      string `json:"suite"`
	KeyVersion uint64 `json:"key_version"`
	PublicKey  string `json:"public_key"` // lowercase hex
}

// NewTopic is the body of new_topic.
type NewTopic struct {
	Topic string `json:"topic"`
}

// TopicResult is the answer to new_topic and to a rotation.
type TopicResult struct {
	Topic   string `json:"topic"`
	Rotated bool   `json:"rotated"`
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

// ProtectRequest is the body of the protect helper (payload base64 in JSON).
type ProtectRequest struct {
	Payload []byte `json:"payload"`
}

// ProtectResponse is its answer.
type ProtectResponse struct {
	Protected []byte `json:"protected"`
}

// UnprotectRequest is the body of the unprotect helper.
type UnprotectRequest struct {
	Protected []byte `json:"protected"`
}

// UnprotectResponse is its answer.
type UnprotectResponse struct {
	Payload []byte `json:"payload"`
}

// BatchAttach links many clients to a topic.
type BatchAttach struct {
	Topic   string   `json:"topic"`
	Clients []string `json:"clients"`
}

// BatchReset resets many clients.
type BatchReset struct {
	Clients []string `json:"clients"`
}

// BatchItem is the outcome of one client of a batch.
type BatchItem struct {
	Client string       `json:"client"` // the reference as given
	OK     bool         `json:"ok"`
	Error  *ErrorDetail `json:"error,omitempty"`
}

// BatchResult is the answer to a batch operation.
type BatchResult struct {
	Succeeded int         `json:"succeeded"`
	Failed    int         `json:"failed"`
	Results   []BatchItem `json:"results"`
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
	KeyVersion    uint64    `json:"key_version,omitempty"` // the key version introduced or used
	Command       string    `json:"command,omitempty"`     // the command queued, if any
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
// JSON rendering of the payload: sealed fields are omitted by the server.
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

// NewToken is the body of token creation.
type NewToken struct {
	Name string `json:"name"`
	Role string `json:"role"` // admin, operator or reader
}

// Token is an API token without its secret (nor its hash).
type Token struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	CreatedBy string    `json:"created_by,omitempty"`
}

// CreatedToken is the answer to token creation: the only time the secret
// is ever shown.
type CreatedToken struct {
	Token
	Secret string `json:"token"`
}

// TokenList is the answer of the token list.
type TokenList struct {
	Items []Token `json:"items"`
}

// ExportedKey is an exported client or topic key (admin only), lowercase
// hex: with CreatedToken, the only key-bearing body.
type ExportedKey struct {
	Client string `json:"client,omitempty"`
	Topic  string `json:"topic,omitempty"`
	Key    string `json:"key"`
}
