package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/e4c2/e4c2/eventstore"
)

// verifyAtStart refuses to serve a log whose hash chain is broken: serving
// it would append after an altered record and bury it. The check is
// incremental (eventstore.QuickVerifier: every stream head plus the
// records since the last check that passed), so it stays fast on a large
// log; a backend without it (EventStoreDB) is not checked here. On success
// the verified point moves to the end of the log; failing to record it
// (e.g. a full disk) only makes the next start check more.
func verifyAtStart(ctx context.Context, st eventstore.Store, log *slog.Logger) error {
	qv, ok := st.(eventstore.QuickVerifier)
	if !ok {
		return nil
	}
	rep, err := qv.QuickVerify(ctx)
	if err != nil {
		return fmt.Errorf("check the store at start: %w", err)
	}
	if err := qv.MarkVerified(ctx, rep.LastPosition); err != nil {
		log.Warn("could not record the verified position", "position", rep.LastPosition, "err", err)
	}
	return nil
}

// storeHealth returns why the store cannot write now (a full disk), for
// the readiness probe; nil when it can or cannot tell.
func storeHealth(st eventstore.Store) error {
	if h, ok := st.(eventstore.HealthReporter); ok {
		return h.Health()
	}
	return nil
}
