package eventstore

import (
	"context"
	"errors"
)

var (
	// ErrNoSpace: the store could not write because its disk (or quota) is
	// full. Nothing of the failed append was written; appends work again
	// once space is freed. The HTTP layer answers 507.
	ErrNoSpace = errors.New("eventstore: no space left on the store's disk")
	// ErrDamaged: the store's file is damaged (a page that does not
	// decode, a truncation, a lost transaction). The store must be
	// restored from a backup; nothing in it can be trusted.
	ErrDamaged = errors.New("eventstore: store damaged")
	// ErrReadOnly: the store was opened read-only (verify, forensics) and
	// refuses every write.
	ErrReadOnly = errors.New("eventstore: store opened read-only")
)

// DamagedError says what is damaged in a store, for an operator (never
// record data). It wraps ErrDamaged.
type DamagedError struct {
	Detail string
}

func (e *DamagedError) Error() string { return "eventstore: store damaged: " + e.Detail }

// Unwrap makes errors.Is(err, ErrDamaged) work.
func (e *DamagedError) Unwrap() error { return ErrDamaged }

// HealthReporter is implemented by backends that can tell whether they can
// write now. Health returns nil when appends should succeed, or an error
// wrapping ErrNoSpace, ErrReadOnly, ErrDamaged or ErrClosed when they
// cannot; a readiness probe reports it.
type HealthReporter interface {
	Health() error
}

// QuickVerifier is implemented by backends that can check their hash
// chains at start without reading the whole log: every stream head
// against the stream's newest record, and every record appended since the
// last point a check passed (persisted by MarkVerified). It catches an
// alteration of any newest record and of anything written since the last
// check; a full Verify (e4c2 verify) checks the rest.
type QuickVerifier interface {
	// QuickVerify returns a *ChainError (wrapping ErrChainBroken) naming
	// the first broken record, or a report of what it checked.
	QuickVerify(ctx context.Context) (*VerifyReport, error)
	// MarkVerified records that the log through position pos verified,
	// so the next QuickVerify starts after it.
	MarkVerified(ctx context.Context, pos uint64) error
}
