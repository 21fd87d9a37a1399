package client

import (
	"errors"

	"github.com/e4c2/e4c2/suites/core"
)

// The protocol errors. Each is an alias of the suites/core sentinel of the
// same name: the same error value, not a copy with the same text, so
// errors.Is(err, client.ErrNotAuthentic) and errors.Is(err,
// core.ErrNotAuthentic) are the same test. They are re-exported so that
// device code can use errors.Is without importing the suites; the
// definitions (and their messages) live in suites/core only. Never assign
// to them. Every error the client returns for one of these conditions
// wraps the sentinel.
var (
	ErrTopicKeyMissing      = core.ErrTopicKeyMissing
	ErrInvalidProtectedLen  = core.ErrInvalidProtectedLen
	ErrTooShortCiphertext   = core.ErrTooShortCiphertext
	ErrInvalidSignature     = core.ErrInvalidSignature
	ErrNotAuthentic         = core.ErrNotAuthentic
	ErrTimestampInFuture    = core.ErrTimestampInFuture
	ErrTimestampTooOld      = core.ErrTimestampTooOld
	ErrPubKeyNotFound       = core.ErrPubKeyNotFound
	ErrInvalidCommand       = core.ErrInvalidCommand
	ErrUnsupportedOperation = core.ErrUnsupportedOperation
	ErrInvalidKey           = core.ErrInvalidKey
	ErrInvalidName          = core.ErrInvalidName
	ErrInvalidTopic         = core.ErrInvalidTopic
	ErrInvalidPassword      = core.ErrInvalidPassword
)

// Errors of the device library itself.
var (
	// ErrEmptyPayload: ProtectMessage refuses an empty payload in SK mode,
	// because every receiver (the reference included) rejects the 24-byte
	// result as too short.
	ErrEmptyPayload = errors.New("e4: empty payload cannot be protected in SK mode")
	// ErrStateCorrupt: a state file (ours or an imported e4go one) is
	// truncated, malformed or inconsistent. Loading never falls back to an
	// empty state.
	ErrStateCorrupt = errors.New("e4: corrupt client state")
	// ErrInvalidConfig: New, Load or an option got an unusable setting.
	ErrInvalidConfig = errors.New("e4: invalid client configuration")
)
