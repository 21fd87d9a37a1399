package c2

import (
	"context"
	"fmt"

	"github.com/e4c2/e4c2/projections"
)

// StateAsOf replays the log into a fresh key state up to asOf (a global
// position, a time, or both) and returns it with the last position
// applied: the state the C2 had then, for reading only (time travel).
// The live projections are not touched; keys stay sealed.
func (s *Service) StateAsOf(ctx context.Context, asOf projections.AsOf) (*projections.KeyState, uint64, error) {
	ks := projections.NewKeyState()
	last, err := projections.Rebuild(ctx, s.store, asOf, ks)
	if err != nil {
		return nil, last, fmt.Errorf("c2: state as of %v: %w", asOf, err)
	}
	return ks, last, nil
}
