package main

import (
	"context"
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
