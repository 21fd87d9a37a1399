package c2_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore/memstore"
	"github.com/e4c2/e4c2/eventstore/sealing"
	"github.com/e4c2/e4c2/internal/testwait"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

// openSnap opens a service on e's store with snapshots in dir.
func (e *env) openSnap(t testing.TB, dir string, every uint64, fromScratch bool, log *slog.Logger) *c2.Service {
	t.Helper()
	svc, err := c2.New(c2.Config{Store: e.store, Sealer: e.sealer, Suite: e.suite, Mode: e.mode, Clock: e.clock.Now,
		Snapshots: &projections.SnapshotDir{Dir: dir, Sealer: e.sealer}, SnapshotEvery: every,
		FromScratch: fromScratch, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc
}

// fullState is everything a key state holds, three ways: its canonical
// encoding (every field, pending deliveries and sync evidence included),
// its comparable export, and what the delivery worker and the sync API
// read from it.
type fullState struct {
	Encoded []byte
	Snap    projections.Snapshot
	Pending []projections.Queued
	Sync    []projections.DeviceSync
	Fleet   projections.FleetSummary
}

func stateOf(t testing.TB, ks *projections.KeyState) fullState {
	t.Helper()
	b, _, err := ks.EncodeState()
	if err != nil {
		t.Fatal(err)
	}
	st := fullState{Encoded: b, Snap: ks.Snapshot(), Pending: ks.PendingAfter(0, 0), Fleet: ks.FleetSummary()}
	for _, id := range ks.LiveClientIDs() {
		ds, _ := ks.DeviceSync(id)
		st.Sync = append(st.Sync, ds)
	}
	return st
}

func sameState(t testing.TB, what string, got, want fullState) {
	t.Helper()
	if !bytes.Equal(got.Encoded, want.Encoded) {
		t.Errorf("%s: canonical encodings differ (%d and %d bytes)", what, len(got.Encoded), len(want.Encoded))
	}
	for _, c := range []struct {
		name string
		a, b any
	}{{"snapshot", got.Snap, want.Snap}, {"pending", got.Pending, want.Pending}, {"sync", got.Sync, want.Sync}, {"fleet", got.Fleet, want.Fleet}} {
		if !reflect.DeepEqual(c.a, c.b) {
			ja, _ := json.Marshal(c.a)
			jb, _ := json.Marshal(c.b)
			if !bytes.Equal(ja, jb) {
				t.Errorf("%s: %s differs", what, c.name)
			}
		}
	}
}

func (e *env) fullReplay(t testing.TB) fullState {
	t.Helper()
	ks := projections.NewKeyState()
	if _, err := projections.Rebuild(context.Background(), e.store, projections.AsOf{}, ks); err != nil {
		t.Fatal(err)
	}
	return stateOf(t, ks)
}

// TestSnapshotPlusTailEqualsFullReplay: after random operation sequences
// (registrations, removals, links, rotations, deliveries, confirmations,
// failures, resyncs, tokens), a service started from a snapshot taken at a
// random point and the tail of the log has exactly the state of a full
// replay: the whole key state, pending deliveries and sync state included.
func TestSnapshotPlusTailEqualsFullReplay(t *testing.T) {
	n := 1500
	if testing.Short() {
		n = 400
	}
	for _, mode := range []core.Mode{core.SymKey, core.PubKey} {
		for seed := uint64(1); seed <= 3; seed++ {
			t.Run(mode.String()+"/"+string(rune('0'+seed)), func(t *testing.T) {
				e := newEnv(t, mode)
				dir := filepath.Join(t.TempDir(), "snapshots")
				e.svc.Close()
				e.svc = e.openSnap(t, dir, 1<<40, false, nil)
				rng := rand.New(rand.NewPCG(seed, uint64(mode)))
				snapAt := rng.IntN(n)
				var snapPos uint64
				randomOps(t, e, rng, n, func(i int) {
					if i == snapAt {
						info, err := e.svc.WriteSnapshot()
						if err != nil {
							t.Fatal(err)
						}
						snapPos = info.Position
					}
				})
				if snapPos == 0 {
					t.Fatal("no snapshot written")
				}
				live := stateOf(t, e.svc.KeyState())
				want := e.fullReplay(t)
				sameState(t, "full replay vs live", want, live)
				// Keep the mid-run snapshot the newest: stop without the
				// shutdown snapshot by opening a second service.
				svc := e.openSnap(t, dir, 1<<40, false, nil)
				if got := svc.LoadedSnapshot().Position; got != snapPos {
					t.Fatalf("started from snapshot %d, want %d", got, snapPos)
				}
				if svc.Position() != want.Snap.Position {
					t.Fatalf("position %d after the tail, want %d", svc.Position(), want.Snap.Position)
				}
				sameState(t, "snapshot+tail vs full replay", stateOf(t, svc.KeyState()), want)
				// From scratch ignores it.
				scratch := e.openSnap(t, dir, 1<<40, true, nil)
				if scratch.LoadedSnapshot().Position != 0 {
					t.Fatal("--from-scratch loaded a snapshot")
				}
				sameState(t, "from scratch vs full replay", stateOf(t, scratch.KeyState()), want)
				// The service works on after a snapshot start: more
				// operations, same state as a replay.
				e.svc = svc
				randomOps(t, e, rng, n/4, nil)
				sameState(t, "snapshot start then more ops", stateOf(t, svc.KeyState()), e.fullReplay(t))
				t.Logf("%d ops, snapshot at %d of %d, %d pending", n, snapPos, want.Snap.Position, want.Snap.Pending)
			})
		}
	}
}

// TestSnapshotCadenceAndShutdown: the service writes a snapshot every N
// events and one at Close; the next start replays nothing.
func TestSnapshotCadenceAndShutdown(t *testing.T) {
	defer c2.SetSnapshotPoll(5 * time.Millisecond)()
	e := newEnv(t, core.SymKey)
	dir := filepath.Join(t.TempDir(), "snapshots")
	e.svc.Close()
	e.svc = e.openSnap(t, dir, 50, false, nil)
	randomOps(t, e, rand.New(rand.NewPCG(9, 9)), 200, nil)
	// Snapshots are written behind the operations: wait for one.
	var names []string
	testwait.For(t, "a snapshot written every 50 events", func() bool {
		names, _ = filepath.Glob(filepath.Join(dir, "keystate-*.snap"))
		return len(names) != 0
	})
	if len(names) > projections.DefaultSnapshotKeep {
		t.Fatalf("%d snapshot files kept", len(names))
	}
	end := e.svc.Position()
	if err := e.svc.Close(); err != nil {
		t.Fatal(err)
	}
	for _, n := range append(names, dir) {
		fi, err := os.Stat(n)
		if err != nil {
			continue // pruned since
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Fatalf("%s: mode %04o", n, perm)
		}
	}
	svc := e.openSnap(t, dir, 50, false, nil)
	if got := svc.LoadedSnapshot().Position; got != end {
		t.Fatalf("start after a graceful stop loaded snapshot %d, want %d (the shutdown snapshot)", got, end)
	}
	sameState(t, "shutdown snapshot", stateOf(t, svc.KeyState()), e.fullReplay(t))
}

// TestSnapshotNeverTrustedWhenBad: a snapshot that is damaged, sealed under
// another master key, or names a record the log does not have is ignored
// with a warning, and the start replays the log (same state).
func TestSnapshotNeverTrustedWhenBad(t *testing.T) {
	e := newEnv(t, core.PubKey)
	dir := t.TempDir()
	e.svc.Close()
	e.svc = e.openSnap(t, dir, 1<<40, false, nil)
	randomOps(t, e, rand.New(rand.NewPCG(5, 5)), 300, nil)
	info, err := e.svc.WriteSnapshot()
	if err != nil || info.Position == 0 {
		t.Fatalf("snapshot: %+v %v", info, err)
	}
	want := e.fullReplay(t)
	good, _ := os.ReadFile(info.Path)
	otherMaster, _ := sealing.MasterKeyFromBytes(bytes.Repeat([]byte{0x17}, 32))
	otherKR, err := sealing.OpenKeyring(context.Background(), memstore.New(), otherMaster)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(t *testing.T){
		"flipped byte in the state": func(t *testing.T) {
			b := bytes.Clone(good)
			b[len(b)-10] ^= 1
			must0(t, os.WriteFile(info.Path, b, 0o600))
		},
		"truncated": func(t *testing.T) { must0(t, os.WriteFile(info.Path, good[:len(good)/2], 0o600)) },
		"garbage":   func(t *testing.T) { must0(t, os.WriteFile(info.Path, []byte("not a snapshot"), 0o600)) },
		"another master key": func(t *testing.T) {
			other := &projections.SnapshotDir{Dir: t.TempDir(), Sealer: otherKR}
			oi, err := other.Save(e.svc.KeyState())
			if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(oi.Path)
			must0(t, os.WriteFile(info.Path, b, 0o600))
		},
		"another log": func(t *testing.T) {
			// Same keyring, another log: the record it names is not here.
			e2 := &env{store: memstore.New(), sealer: e.sealer, suite: e.suite, clock: newClock(), mode: e.mode}
			e2.svc = e2.open(t)
			randomOps(t, e2, rand.New(rand.NewPCG(6, 6)), 100, nil)
			must0(t, os.Remove(info.Path))
			if _, err := (&projections.SnapshotDir{Dir: dir, Sealer: e.sealer}).Save(e2.svc.KeyState()); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			for _, n := range must(filepath.Glob(filepath.Join(dir, "*.snap")))(t) {
				must0(t, os.Remove(n))
			}
			must0(t, os.WriteFile(info.Path, good, 0o600))
			damage(t)
			var logs bytes.Buffer
			svc := e.openSnap(t, dir, 1<<40, false, slog.New(slog.NewTextHandler(&logs, nil)))
			if p := svc.LoadedSnapshot().Position; p != 0 {
				t.Fatalf("a bad snapshot was used (position %d)", p)
			}
			if !strings.Contains(logs.String(), "ignoring a key-state snapshot") {
				t.Fatalf("no warning: %s", logs.String())
			}
			sameState(t, name, stateOf(t, svc.KeyState()), want)
			svc.Close()
		})
	}
}

func must0(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotHoldsNoClearKey: the snapshot file holds the topic and
// client keys sealed, as the log does: none of them appears in clear.
func TestSnapshotHoldsNoClearKey(t *testing.T) {
	e := newEnv(t, core.SymKey)
	dir := t.TempDir()
	e.svc.Close()
	e.svc = e.openSnap(t, dir, 1<<40, false, nil)
	randomOps(t, e, rand.New(rand.NewPCG(11, 11)), 300, nil)
	info, err := e.svc.WriteSnapshot()
	if err != nil || info.Position == 0 {
		t.Fatalf("snapshot: %+v %v", info, err)
	}
	file, _ := os.ReadFile(info.Path)
	ks := e.svc.KeyState()
	checked := 0
	for _, tp := range ks.Snapshot().Topics {
		id, err := domain.ParseID(tp.Hash)
		if err != nil {
			t.Fatal(err)
		}
		ref, ok := ks.TopicKey(id)
		if !ok || ref.Sealed == nil {
			continue
		}
		clearKey, err := e.sealer.Open(ref.Sealed, sealing.SealAD(ref.Stream, ref.Version, ref.WireType))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(file, clearKey) {
			t.Fatalf("topic %s: its key is in the snapshot in clear", tp.Name)
		}
		if !bytes.Contains(file, ref.Sealed) {
			t.Fatalf("topic %s: its sealed key is not in the snapshot", tp.Name)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no topic key checked")
	}
}

// TestSnapshotStartFillsAuditWindow: a start from a snapshot gives the
// in-memory audit trail the same newest entries as a full replay (the
// window behind the snapshot is filled after New returns).
func TestSnapshotStartFillsAuditWindow(t *testing.T) {
	e := newEnv(t, core.SymKey)
	dir := t.TempDir()
	e.svc.Close()
	e.svc = e.openSnap(t, dir, 1<<40, false, nil)
	rng := rand.New(rand.NewPCG(3, 4))
	randomOps(t, e, rng, 400, nil)
	if _, err := e.svc.WriteSnapshot(); err != nil {
		t.Fatal(err)
	}
	randomOps(t, e, rng, 100, nil)
	const max = 150
	svc, err := c2.New(c2.Config{Store: e.store, Sealer: e.sealer, Suite: e.suite, Mode: e.mode, Clock: e.clock.Now,
		AuditMax: max, Snapshots: &projections.SnapshotDir{Dir: dir, Sealer: e.sealer}, SnapshotEvery: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if svc.LoadedSnapshot().Position == 0 {
		t.Fatal("no snapshot start")
	}
	<-svc.AuditFilled()
	full := projections.NewAudit(0)
	if _, err := projections.Rebuild(context.Background(), e.store, projections.AsOf{}, full); err != nil {
		t.Fatal(err)
	}
	want := full.Entries()
	got := svc.AuditLog().Entries()
	if len(got) < max*9/10 || len(got) > max {
		t.Fatalf("%d audit entries after a snapshot start, want about %d", len(got), max)
	}
	want = want[len(want)-len(got):]
	if !reflect.DeepEqual(got, want) {
		t.Fatal("the audit window after a snapshot start differs from a full replay's")
	}
}
