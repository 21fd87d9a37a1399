package domain

import (
	"errors"
	"fmt"

	"github.com/e4c2/e4c2/suites/core"
)

// The domain errors. Every refusal of Decide wraps one of these (or a core
// sentinel such as core.ErrInvalidName, core.ErrInvalidTopic or
// core.ErrInvalidKey), inside an *OpError, so callers can use errors.Is for
// the kind and errors.As for the detail. Transport maps them to status codes
// in one table.
var (
	ErrUnknownClient = errors.New("unknown client")
	ErrUnknownTopic  = errors.New("unknown topic")
	ErrUnknownToken  = errors.New("unknown token")
	ErrAlreadyExists = errors.New("already exists")
	ErrNotLinked     = errors.New("client is not linked to topic")
	// ErrWrongMode wraps core.ErrUnsupportedOperation (same message), so
	// both sentinels match an operation refused in the current mode.
	ErrWrongMode       = fmt.Errorf("%w", core.ErrUnsupportedOperation)
	ErrInvalidRole     = errors.New("invalid role")
	ErrInvalidEvent    = errors.New("invalid event encoding")
	ErrUnknownEvent    = errors.New("unknown event type")
	ErrNoC2Key         = errors.New("no c2 key pair")
	ErrInvalidCommand  = errors.New("invalid command")
	ErrUnknownDelivery = errors.New("unknown queued command")
	// ErrTokenNameRevoked: a token of that name existed and was revoked.
	// Names are never reused, so "token:<name>" in the audit always means
	// one token; pick another name.
	ErrTokenNameRevoked = errors.New("token name was used by a revoked token")
	// ErrLastAdminToken: revoking the only live admin token would leave
	// nobody able to manage tokens through the API. Create another admin
	// token first; with no admin token at all, the server stopped, use
	// e4c2 token create --data-dir.
	ErrLastAdminToken = errors.New("cannot revoke the last admin token")
	// ErrClientExists and ErrTopicExists refuse a creation that would
	// silently rekey: registering over an existing client replaced its key
	// without telling the device (whose next command then failed), and
	// creating an existing topic rotated it. Both wrap ErrAlreadyExists.
	ErrClientExists = fmt.Errorf("client %w", ErrAlreadyExists)
	ErrTopicExists  = fmt.Errorf("topic %w", ErrAlreadyExists)
)

// OpError is the error of a refused operation: which operation, on what
// (a client or topic name, or a hex id; never key material) and why.
type OpError struct {
	Op      string // e.g. "new_topic_client"
	Subject string // client name / id, topic, token name
	Err     error  // wraps one of the sentinels above or a core sentinel
}

func (e *OpError) Error() string {
	if e.Subject == "" {
		return e.Op + ": " + e.Err.Error()
	}
	return fmt.Sprintf("%s %s: %v", e.Op, e.Subject, e.Err)
}

// Unwrap returns the reason, so errors.Is works on the sentinels.
func (e *OpError) Unwrap() error { return e.Err }

func opErr(op, subject string, err error) error {
	return &OpError{Op: op, Subject: subject, Err: err}
}
