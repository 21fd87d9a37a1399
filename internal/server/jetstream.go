package server

import (
	"context"
	"fmt"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/jetstream"
	"github.com/e4c2/e4c2/internal/config"
)

// openJetStream opens the log on a NATS JetStream server or cluster named
// by a nats:// or tls:// URL (see jetstream.ParseURL for its parameters).
func openJetStream(ctx context.Context, url string) (eventstore.Store, error) {
	st, err := jetstream.Open(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", config.RedactedError{Err: err})
	}
	return st, nil
}
