package eventstore

import (
	"context"
	"errors"
	"fmt"
)

// KeyringStorage is implemented by every backend: it keeps the sealing
// keyring (wrapped data keys, KDF parameters, key-check value) in a mutable
// place beside the append-only log, so that a master-key rotation rewrites
// the keyring and never the log.
type KeyringStorage interface {
	// LoadKeyring returns the stored keyring, or an error wrapping
	// ErrNoKeyring when none was saved yet.
	LoadKeyring(ctx context.Context) ([]byte, error)
	// SaveKeyring replaces the stored keyring durably.
	SaveKeyring(ctx context.Context, keyring []byte) error
}

// ErrNoKeyring: the backend holds no keyring yet.
var ErrNoKeyring = errors.New("eventstore: no keyring stored")

// ErrInvalidEvent: an appended event or stream name is not acceptable
// (empty stream, id or type).
var ErrInvalidEvent = errors.New("eventstore: invalid event")

// ValidateAppend checks the arguments of an Append the same way for every
// backend.
func ValidateAppend(stream string, expected int64, evs []EventData) error {
	if stream == "" {
		return fmt.Errorf("%w: empty stream name", ErrInvalidEvent)
	}
	if expected < Any {
		return fmt.Errorf("%w: expected version %d below -1", ErrInvalidEvent, expected)
	}
	for i := range evs {
		if evs[i].ID == "" || evs[i].Type == "" {
			return fmt.Errorf("%w: event %d has no id or type", ErrInvalidEvent, i)
		}
	}
	return nil
}

// CheckExpected returns a *ConflictError when a stream at version actual
// does not satisfy expected.
func CheckExpected(stream string, expected int64, actual uint64) error {
	if expected == Any || uint64(expected) == actual {
		return nil
	}
	return &ConflictError{Stream: stream, Expected: expected, Actual: actual}
}
