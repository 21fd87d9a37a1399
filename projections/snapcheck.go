package projections

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/e4c2/e4c2/eventstore"
)

// ErrSnapshotMismatch is returned (wrapped) by SnapshotDir.Check when a
// snapshot's state differs from a replay of the log up to its position.
var ErrSnapshotMismatch = errors.New("projections: snapshot state differs from a replay of the log")

// SnapshotCheck is the outcome of checking one snapshot file.
type SnapshotCheck struct {
	Path     string
	Position uint64 // 0 when the file does not load
	// Replayed is set when the state was compared with a replay of the
	// log up to Position (and matched, unless Err says otherwise).
	Replayed bool
	// Err says why a start would not use the snapshot, or why its state
	// is not the log's; nil when it checks out.
	Err error
}

// Check checks every snapshot file of the directory, newest first, as a
// start would before using it: it decodes, its sealed digest opens (only a
// holder of the master key made it) and matches, and the log holds the
// record it names at its position (so the position is not beyond the
// log). With replay, it also rebuilds a key state from the log up to each
// snapshot's position and compares the two images byte for byte (their
// encoding is deterministic): a snapshot that passed the first checks but
// disagrees with the log means a bug in a projection or its encoding. It
// writes nothing. The returned error is the context's or the store's;
// every snapshot's own outcome is in its SnapshotCheck.
func (d SnapshotDir) Check(ctx context.Context, store eventstore.Store, replay bool) ([]SnapshotCheck, error) {
	if d.Sealer == nil {
		return nil, errors.New("projections: check snapshots: no sealer")
	}
	var out []SnapshotCheck
	loaded := map[int]*KeyState{}
	for _, path := range d.list() {
		c := SnapshotCheck{Path: path}
		ks, info, err := d.load(ctx, path, store)
		if err := ctx.Err(); err != nil {
			return out, err
		}
		if err != nil {
			c.Err = err
		} else {
			c.Position = info.Position
			loaded[len(out)] = ks
		}
		out = append(out, c)
	}
	if !replay || len(loaded) == 0 {
		return out, nil
	}
	// One replay serves every snapshot: oldest position first.
	order := make([]int, 0, len(loaded))
	for i := range loaded {
		order = append(order, i)
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(out[a].Position, out[b].Position) })
	fresh := NewKeyState()
	for _, i := range order {
		if err := replayTo(ctx, store, fresh, out[i].Position); err != nil {
			return out, err
		}
		mismatch, err := sameState(loaded[i], fresh)
		if err != nil {
			return out, err
		}
		out[i].Replayed, out[i].Err = true, mismatch
	}
	return out, nil
}

// replayTo applies the records after ks's position up to pos.
func replayTo(ctx context.Context, store eventstore.Store, ks *KeyState, pos uint64) error {
	for ks.Position() < pos {
		recs, err := store.ReadAll(ctx, ks.Position()+1, min(4096, int(pos-ks.Position())))
		if err != nil {
			return fmt.Errorf("projections: check snapshots: %w", err)
		}
		if len(recs) == 0 {
			return fmt.Errorf("projections: check snapshots: the log ends before position %d", pos)
		}
		for _, r := range recs {
			if err := ks.Apply(r); err != nil {
				return fmt.Errorf("projections: check snapshots: replay at position %d: %w", r.Position, err)
			}
		}
	}
	return nil
}

// sameState compares the images of a snapshot's state and a replayed one
// (byte for byte: the encoding is deterministic). A difference is
// returned as mismatch, an encoding failure as err.
func sameState(snap, replayed *KeyState) (mismatch, err error) {
	want, pos, err := snap.EncodeState()
	if err != nil {
		return nil, err
	}
	got, _, err := replayed.EncodeState()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w (position %d)", ErrSnapshotMismatch, pos), nil
	}
	return nil, nil
}
