package apiclient

import (
	"time"

	"github.com/e4c2/e4c2/transport/http/apitypes"
)

// The request and response bodies are the server's own types
// (transport/http/apitypes), under the names this package has always
// used: one set of types for both ends, so that a field the server adds
// reaches the client, and the server's OpenAPI test covers both.
type (
	// ClientInfo is the public view of a C2 client (device). It never holds a key.
	ClientInfo = apitypes.Client
	// ClientSync is what the C2 wants a device to hold against the evidence it has.
	ClientSync = apitypes.ClientSync
	// KeySync is one key: desired, newest accepted and newest confirmed versions.
	KeySync = apitypes.KeySync
	// TopicSync is the key of one linked topic.
	TopicSync = apitypes.TopicSync
	// FleetSummary counts the clients by sync status.
	FleetSummary = apitypes.Fleet
	// ResyncResult is the answer to a resync.
	ResyncResult = apitypes.ResyncResult
	// ReleaseResult is the answer to a release.
	ReleaseResult = apitypes.ReleaseResult
	// PubKeySync is the public key of one peer a PK device was sent.
	PubKeySync = apitypes.PubKeySync
	// Topic is the public view of a topic. It never holds a key.
	Topic = apitypes.Topic
	// NewClientRequest is the body of new_client (keys in hex).
	NewClientRequest = apitypes.NewClient
	// TopicResult is the answer to new_topic.
	TopicResult = apitypes.TopicResult
	// BatchItem is the outcome of one client of a batch.
	BatchItem = apitypes.BatchItem
	// BatchResult is the answer to a batch operation.
	BatchResult = apitypes.BatchResult
	// AuditEntry is one line of the audit trail.
	AuditEntry = apitypes.AuditEntry
	// Delivery is a queued command not yet settled.
	Delivery = apitypes.Delivery
	// Event is one event of the log as the API shows it.
	Event = apitypes.Event
	// Token is an API token without its secret.
	Token = apitypes.Token
	// CreatedToken is the answer to token creation: the only time the secret is shown.
	CreatedToken = apitypes.CreatedToken
	// ExportedKey is an exported client or topic key (admin only), lowercase hex.
	ExportedKey = apitypes.ExportedKey
	// ErrorDetail is the JSON error object of the API.
	ErrorDetail = apitypes.ErrorDetail
	// C2Key is the public half of the C2 key pair (PK mode).
	C2Key = apitypes.C2Key
	// Rule is an automation rule as the API shows it (spec kept raw).
	Rule = apitypes.Rule
	// RuleOperation is one C2 operation a rule would make (dry run).
	RuleOperation = apitypes.RuleOperation
	// RulePlan is the answer to a dry run.
	RulePlan = apitypes.RulePlan
)

// Page is one page of a list; Next is the cursor of the next page, empty
// on the last one.
type Page[T any] = apitypes.Page[T]

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
