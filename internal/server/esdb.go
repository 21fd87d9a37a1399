package server

import (
	"context"
	"fmt"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/esdb"
	"github.com/e4c2/e4c2/internal/config"
)

func openESDB(ctx context.Context, url string) (eventstore.Store, error) {
	st, err := esdb.Open(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("eventstoredb: %w", config.RedactedError{Err: err})
	}
	return st, nil
}
