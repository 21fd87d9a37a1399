package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/eventreg"
)

// decodingStore is the store as the offline tools read it: every record
// ReadAll returns must decode through the one event registry
// (internal/eventreg), so replay, audit and export fail on a record no
// component can read instead of skipping it silently, and read a log with
// rule events as verify does.
type decodingStore struct{ eventstore.Store }

// ReadAll implements eventstore.Store.
func (s decodingStore) ReadAll(ctx context.Context, from uint64, limit int) ([]eventstore.Record, error) {
	recs, err := s.Store.ReadAll(ctx, from, limit)
	if err != nil {
		return nil, err
	}
	for i := range recs {
		if _, err := eventreg.Decode(&recs[i]); err != nil {
			return nil, fmt.Errorf("event at position %d (%s) does not decode: %w", recs[i].Position, recs[i].Type, err)
		}
	}
	return recs, nil
}

// damagedError is the one line an operator sees for a damaged store: what
// is damaged and what to do, never a trace.
type damagedError struct {
	where, detail string
	err           error
}

func (e *damagedError) Error() string {
	return fmt.Sprintf("store damaged: %s: %s; restore from backup", e.where, e.detail)
}

func (e *damagedError) Unwrap() error { return e.err }

// storeError turns the store errors an operator must act on into one
// line and a hint: a damaged file, a broken hash chain, a full disk.
// Other errors pass unchanged.
func storeError(where string, err error) error {
	var ee *exitError
	if err == nil || errors.As(err, &ee) {
		return err
	}
	var de *eventstore.DamagedError
	var ce *eventstore.ChainError
	switch {
	case errors.As(err, &de):
		return &exitError{err: &damagedError{where: where, detail: de.Detail, err: err}, code: 1,
			hint: "the file cannot be trusted: e4c2 verify --store COPY checks a backup before you restore it"}
	case errors.Is(err, eventstore.ErrDamaged):
		return &exitError{err: &damagedError{where: where, detail: err.Error(), err: err}, code: 1,
			hint: "the file cannot be trusted: e4c2 verify --store COPY checks a backup before you restore it"}
	case errors.As(err, &ce):
		return chainError(ce)
	case errors.Is(err, eventstore.ErrNoSpace):
		return withHint(fmt.Errorf("the disk of %s is full: %w", where, err),
			"free space on that file system; reading commands (verify, replay, export) work meanwhile")
	}
	return err
}

// chainError is the one line naming the first broken record.
func chainError(ce *eventstore.ChainError) error {
	return withHint(&brokenChainError{ce},
		"the log was altered after it was written; restore it from a backup")
}

// brokenChainError prints a *eventstore.ChainError for an operator.
type brokenChainError struct{ ce *eventstore.ChainError }

func (e *brokenChainError) Error() string {
	return fmt.Sprintf("hash chain broken at position %d (stream %s, version %d): %s", e.ce.Position, e.ce.Stream, e.ce.Version, e.ce.Reason)
}

func (e *brokenChainError) Unwrap() error { return e.ce }

// requireIntactChain runs a full Verify and refuses a log whose hash chain
// is broken: replaying or copying it would present altered records as the
// log. It returns the report of a log that verifies.
func requireIntactChain(ctx context.Context, st eventstore.Store) (*eventstore.VerifyReport, error) {
	rep, err := eventstore.Verify(ctx, st, nil)
	if err != nil {
		var ce *eventstore.ChainError
		if errors.As(err, &ce) {
			return nil, chainError(ce)
		}
		return nil, fmt.Errorf("verify: %w", err)
	}
	return rep, nil
}
