package projections_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/memstore"
	"github.com/e4c2/e4c2/projections"
)

// genStore writes a generated log into a memory store.
func genStore(t *testing.T, gen func(g *logGen)) *memstore.Store {
	t.Helper()
	st := memstore.New()
	ctx := context.Background()
	g := newLogGen(func(r eventstore.Record) {
		if _, err := st.Append(ctx, r.Stream, int64(r.Version-1), r.EventData); err != nil {
			t.Fatal(err)
		}
	})
	gen(g)
	return st
}

// TestSnapshotCheck: Check passes the snapshots a replay would produce
// (and compares them with one), fails one beyond the end of the log and
// one whose sealed digest does not match, and tells a validly sealed
// snapshot whose state is not the log's (another log with the same record
// ids) only when asked to replay.
func TestSnapshotCheck(t *testing.T) {
	ctx := context.Background()
	sealer := newFakeSealer()
	st := genStore(t, func(g *logGen) { g.population(40, 8, 2); g.traffic(40, 8, 600) })
	dir := projections.SnapshotDir{Dir: filepath.Join(t.TempDir(), "snapshots"), Sealer: sealer, Keep: 10}
	for _, pos := range []uint64{200, 450} {
		ks := projections.NewKeyState()
		if _, err := projections.Rebuild(ctx, st, projections.AsOf{Position: pos}, ks); err != nil {
			t.Fatal(err)
		}
		if _, err := dir.Save(ks); err != nil {
			t.Fatal(err)
		}
	}
	checks, err := dir.Check(ctx, st, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 2 {
		t.Fatalf("%d checks, want 2", len(checks))
	}
	for _, c := range checks {
		if c.Err != nil || !c.Replayed || (c.Position != 200 && c.Position != 450) {
			t.Fatalf("a snapshot made by a replay: %+v", c)
		}
	}

	// A longer log's snapshot, against this one: beyond its end.
	long := genStore(t, func(g *logGen) { g.population(40, 8, 2); g.traffic(40, 8, 900) })
	ks := projections.NewKeyState()
	if _, err := projections.Rebuild(ctx, long, projections.AsOf{Position: 800}, ks); err != nil {
		t.Fatal(err)
	}
	beyond := projections.SnapshotDir{Dir: filepath.Join(t.TempDir(), "beyond"), Sealer: sealer}
	if _, err := beyond.Save(ks); err != nil {
		t.Fatal(err)
	}
	checks, err = beyond.Check(ctx, st, true)
	if err != nil || len(checks) != 1 || checks[0].Err == nil || checks[0].Replayed {
		t.Fatalf("a snapshot beyond the log: %+v, %v", checks, err)
	}

	// Another log, same record ids up to 300 (the generator numbers
	// them), another state: sealed with the right key, it passes every
	// check but the replay.
	other := genStore(t, func(g *logGen) { g.population(30, 8, 3); g.traffic(30, 8, 600) })
	ks = projections.NewKeyState()
	if _, err := projections.Rebuild(ctx, other, projections.AsOf{Position: 300}, ks); err != nil {
		t.Fatal(err)
	}
	planted := projections.SnapshotDir{Dir: filepath.Join(t.TempDir(), "planted"), Sealer: sealer}
	info, err := planted.Save(ks)
	if err != nil {
		t.Fatal(err)
	}
	checks, err = planted.Check(ctx, st, false)
	if err != nil || len(checks) != 1 || checks[0].Err != nil {
		t.Fatalf("without replay: %+v, %v", checks, err)
	}
	checks, err = planted.Check(ctx, st, true)
	if err != nil || len(checks) != 1 || !errors.Is(checks[0].Err, projections.ErrSnapshotMismatch) {
		t.Fatalf("with replay: %+v, %v; want ErrSnapshotMismatch", checks, err)
	}

	// One altered byte: the sealed digest no longer matches.
	b, err := os.ReadFile(info.Path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	if err := os.WriteFile(info.Path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	checks, err = planted.Check(ctx, other, false)
	if err != nil || len(checks) != 1 || checks[0].Err == nil {
		t.Fatalf("an altered snapshot: %+v, %v", checks, err)
	}
}
