package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Expected-version values for Append, besides an exact stream version n >= 1
// (the stream must then hold exactly n events).
const (
	// Any appends whatever the stream holds.
	Any int64 = -1
	// NoStream requires the stream to be missing (hold no event).
	NoStream int64 = 0
)

// Metadata travels with every event. It never holds secrets.
type Metadata struct {
	Time          time.Time // when the C2 decided the event (UTC)
	Actor         string    // "token:<name>", "cli:<user>", "rule:<id>", "system"
	CausationID   string    // id of the event or request that caused this one
	CorrelationID string    // id shared by every event of one user request
	Suite         string    // crypto suite in force ("standard", "fips", "pq")
	Mode          string    // "sk" or "pk"
}

// EventData is an event to append: its wire type, its encoded payload (secret
// fields already sealed) and its metadata.
type EventData struct {
	ID   string // unique event id, lowercase hex of 16 random bytes
	Type string // stable versioned wire name, e.g. "topic.created.v1"
	Data []byte
	Meta Metadata
}

// Record is a stored event.
type Record struct {
	EventData
	Stream   string
	Version  uint64 // 1-based number of the event within its stream
	Position uint64 // 1-based global position, strictly increasing
	// PrevHash is the Hash of the previous record of the same stream (all
	// zero for the first). It makes each stream a tamper-evident chain.
	PrevHash [32]byte
}

// Store is an append-only event log with optimistic concurrency. Every
// backend runs the storetest conformance suite.
type Store interface {
	// Append adds events to stream if it holds expected events (or any
	// number, with Any) and returns the new stream version. A mismatch
	// returns an error wrapping ErrConflict (a *ConflictError).
	Append(ctx context.Context, stream string, expected int64, evs ...EventData) (uint64, error)
	// ReadStream returns the events of stream with Version >= from.
	ReadStream(ctx context.Context, stream string, from uint64) ([]Record, error)
	// ReadAll returns at most limit events with Position >= from, in
	// global order.
	ReadAll(ctx context.Context, from uint64, limit int) ([]Record, error)
	// Subscribe calls fn for every event with Position >= from: first the
	// stored ones (catch-up), then new ones as they are appended (live),
	// in order, without gap or duplicate. It blocks until ctx is done
	// (returning ctx.Err()), fn returns an error (returned wrapped) or the
	// store is closed (ErrClosed).
	Subscribe(ctx context.Context, from uint64, fn func(Record) error) error
	// Close releases the store; later calls return ErrClosed.
	Close() error
}

var (
	// ErrConflict: the stream did not hold the expected version.
	ErrConflict = errors.New("eventstore: wrong expected version")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("eventstore: store closed")
)

// ConflictError gives the detail of an ErrConflict.
type ConflictError struct {
	Stream   string
	Expected int64
	Actual   uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("eventstore: stream %q: expected version %d, actual %d", e.Stream, e.Expected, e.Actual)
}

// Unwrap makes errors.Is(err, ErrConflict) work.
func (e *ConflictError) Unwrap() error { return ErrConflict }
