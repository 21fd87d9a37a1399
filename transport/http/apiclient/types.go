package apiclient

import (
	"encoding/json"
	"time"
)

// ClientInfo is the public view of a C2 client (device). It never holds a key.
type ClientInfo struct {
	Name       string    `json:"name,omitempty"`
	ID         string    `json:"id"`
	Role       string    `json:"role,omitempty"`
	KeyVersion uint64    `json:"key_version,omitempty"`
	Topics     int       `json:"topics"`
	Pending    int       `json:"pending"`
	CreatedAt  time.Time `json:"created_at,omitzero"`
	UpdatedAt  time.Time `json:"updated_at,omitzero"`
	// Sync is set by GetClient (not in lists).
	Sync *ClientSync `json:"sync,omitempty"`
}

// ClientSync is what the C2 wants a device to hold against the evidence it
// has: "accepted" means a broker took the command carrying a key,
// "confirmed" that the device's own MQTT session took it.
type ClientSync struct {
	Status        string       `json:"status"`             // never_seen, in_sync or lagging
	Evidence      string       `json:"evidence,omitempty"` // in_sync: confirmed or accepted
	Seen          bool         `json:"seen"`
	FirstSeen     time.Time    `json:"first_seen,omitzero"`
	Released      bool         `json:"released,omitempty"` // never seen, commands released by an operator
	Pending       int          `json:"pending"`
	OldestPending time.Time    `json:"oldest_pending,omitzero"`
	Identity      KeySync      `json:"identity"`
	C2Key         *KeySync     `json:"c2key,omitempty"` // PK mode
	Topics        []TopicSync  `json:"topics"`
	PubKeys       []PubKeySync `json:"pubkeys,omitempty"` // PK mode: peers' public keys sent
}

// PubKeySync is the public key of one peer a device was sent: the peer's
// key versions; desired 0 = the device should not hold it.
type PubKeySync struct {
	Client  string `json:"client"`
	ID      string `json:"id"`
	Removed bool   `json:"removed,omitempty"`
	KeySync
}

// KeySync is one key: the version the C2 wants, the newest accepted and
// the newest confirmed (0: none).
type KeySync struct {
	Desired   uint64 `json:"desired"`
	Accepted  uint64 `json:"accepted"`
	Confirmed uint64 `json:"confirmed"`
}

// TopicSync is the key of one linked topic.
type TopicSync struct {
	Topic string `json:"topic"`
	Hash  string `json:"hash"`
	KeySync
}

// FleetSummary counts the clients by sync status; Pending is the number of
// queued commands.
type FleetSummary struct {
	Clients   int `json:"clients"`
	InSync    int `json:"in_sync"`
	Lagging   int `json:"lagging"`
	NeverSeen int `json:"never_seen"`
	Pending   int `json:"pending"`
	Waiting   int `json:"waiting"`  // commands of never-seen clients nobody released
	Released  int `json:"released"` // never-seen clients released
}

// ReleaseResult is the answer to a release.
type ReleaseResult struct {
	Client   string `json:"client,omitempty"`
	Released int    `json:"released"`
	Commands int    `json:"commands"`
}

// ResyncResult is the answer to a resync.
type ResyncResult struct {
	Client string `json:"client,omitempty"`
	Queued int    `json:"queued"`
}

// Topic is the public view of a topic. It never holds a key.
type Topic struct {
	Name       string    `json:"name"`
	Hash       string    `json:"hash"`
	KeyVersion uint64    `json:"key_version,omitempty"`
	Clients    int       `json:"clients"`
	CreatedAt  time.Time `json:"created_at,omitzero"`
	RotatedAt  time.Time `json:"rotated_at,omitzero"`
}

// Page is one page of a list; Next is the cursor of the next page, empty
// on the last one.
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// NewClientRequest is the body of new_client. Key (SK) and PublicKey (PK) are
// lowercase hex; give exactly one of them.
type NewClientRequest struct {
	Name      string `json:"name,omitempty"`
	ID        string `json:"id,omitempty"`
	Key       string `json:"key,omitempty"`
	PublicKey string `json:"public_key,omitempty"`
	Role      string `json:"role,omitempty"`
	// Replace allows an existing client: its role is kept and its key is
	// replaced the way a rotation does it. Without it the server refuses
	// an existing client (409 client_exists).
	Replace bool `json:"replace,omitempty"`
}

// TopicResult is the answer to new_topic.
type TopicResult struct {
	Topic   string `json:"topic"`
	Rotated bool   `json:"rotated"`
}

// BatchItem is the outcome of one client of a batch.
type BatchItem struct {
	Client string       `json:"client"`
	OK     bool         `json:"ok"`
	Error  *ErrorDetail `json:"error,omitempty"`
}

// BatchResult is the answer to a batch operation.
type BatchResult struct {
	Succeeded int         `json:"succeeded"`
	Failed    int         `json:"failed"`
	Results   []BatchItem `json:"results"`
}

// AuditQuery filters the audit trail; zero fields do not filter.
type AuditQuery struct {
	Client string
	Topic  string
	Actor  string
	From   time.Time
	To     time.Time
	Cursor string
	Limit  int
}

// AuditEntry is one line of the audit trail.
type AuditEntry struct {
	Position      uint64    `json:"position"`
	Time          time.Time `json:"time"`
	Type          string    `json:"type"`
	Actor         string    `json:"actor"`
	Client        string    `json:"client,omitempty"`
	Topic         string    `json:"topic,omitempty"`
	CorrelationID string    `json:"correlation_id,omitempty"`
	Summary       string    `json:"summary,omitempty"`
	// KeyVersion is the key version the operation introduced or used
	// (0: none); Command the command queued, if any.
	KeyVersion uint64 `json:"key_version,omitempty"`
	Command    string `json:"command,omitempty"`
}

// Delivery is a queued command not yet settled (accepted by a broker,
// confirmed by the device's session, or failed).
type Delivery struct {
	CommandID  string    `json:"command_id"`
	Client     string    `json:"client"`
	Command    string    `json:"command"`
	Topic      string    `json:"topic,omitempty"`
	QueuedAt   time.Time `json:"queued_at"`
	Attempts   int       `json:"attempts"`
	LastError  string    `json:"last_error,omitempty"`
	Position   uint64    `json:"position,omitempty"`
	KeyVersion uint64    `json:"key_version,omitempty"`
}

// Event is one event of the log as the API shows it (sealed fields
// omitted by the server).
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

// ExportedKey is an exported client or topic key (admin only), lowercase hex.
type ExportedKey struct {
	Client string `json:"client,omitempty"`
	Topic  string `json:"topic,omitempty"`
	Key    string `json:"key"`
}

// ErrorDetail is the JSON error object of the API.
type ErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}
