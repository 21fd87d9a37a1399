package benchmarks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/boltstore"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/standard"
)

// GroupStore is the group of the store measurements.
const GroupStore = "store"

// storeTitle is the title of the store group.
const storeTitle = "Event store: durable append and replay"

// benchEvent is a small event like the C2 appends (about 100 bytes).
func benchEvent() eventstore.EventData {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return eventstore.EventData{
		ID:   hex.EncodeToString(id),
		Type: "bench.appended.v1",
		Data: make([]byte, 100),
		Meta: eventstore.Metadata{Actor: "system:bench"},
	}
}

// fsyncBaseline returns the time of one append of 128 bytes plus fsync to a
// file in dir, the floor of any durable append on that disk.
func fsyncBaseline(dir string, d time.Duration) (time.Duration, error) {
	f, err := os.OpenFile(filepath.Join(dir, "baseline.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("baseline file: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 128)
	n, start := 0, time.Now()
	for n < 3 || time.Since(start) < d {
		if _, err := f.Write(buf); err != nil {
			return 0, fmt.Errorf("baseline write: %w", err)
		}
		if err := f.Sync(); err != nil {
			return 0, fmt.Errorf("baseline fsync: %w", err)
		}
		n++
	}
	return time.Since(start) / time.Duration(n), nil
}

// appendWriters runs writers goroutines appending one event each call to
// their own stream for about d and returns the wall time per event.
func appendWriters(ctx context.Context, st *boltstore.Store, writers int, d time.Duration) (time.Duration, int64, error) {
	var total atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("bench-%d-%d", writers, w)
			for time.Since(start) < d {
				if _, err := st.Append(ctx, stream, eventstore.Any, benchEvent()); err != nil {
					errc <- fmt.Errorf("append: %w", err)
					return
				}
				total.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		return 0, 0, err
	}
	n := total.Load()
	if n == 0 {
		return 0, 0, fmt.Errorf("no append completed")
	}
	return el / time.Duration(n), n, nil
}

// StoreAppendBench measures durable appends with 1 and 8 writers in a
// boltstore in a temporary directory under dir, each against a bare
// append + fsync of a file in the same directory, run alternately.
func StoreAppendBench(ctx context.Context, rep *Report, dir string, d time.Duration, step func(string)) error {
	tmp, err := os.MkdirTemp(dir, "e4c2-bench-store-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	st, err := boltstore.Open(filepath.Join(tmp, "append.db"), nil)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, writers := range []int{1, 8} {
		step(fmt.Sprintf("store append, %d writer(s)", writers))
		base, err := fsyncBaseline(tmp, d/2)
		if err != nil {
			return err
		}
		per, n, err := appendWriters(ctx, st, writers, d)
		if err != nil {
			return err
		}
		base2, err := fsyncBaseline(tmp, d/2)
		if err != nil {
			return err
		}
		base = (base + base2) / 2
		rep.Add(GroupStore, storeTitle, Row{
			Op: fmt.Sprintf("append %dw", writers), Value: float64(per) / 1e3, Unit: "us/event",
			Baseline: "write+fsync", BaselineValue: float64(base) / 1e3,
			Note: fmt.Sprintf("%d events, %.0f events/s", n, float64(time.Second)/float64(per)),
		}.withRatio())
	}
	return nil
}

// BuildLog fills a C2 log in dir with at least n events made by real C2
// operations (client registrations, topic creations, attachments and their
// queued commands) and returns the number of events written.
func BuildLog(ctx context.Context, dir string, n int, progress func(done int)) (uint64, []byte, error) {
	env, err := openC2(ctx, dir, standard.New(), core.SymKey, nil, 0)
	if err != nil {
		return 0, nil, err
	}
	defer env.Close()
	s := env.Svc.Suite()
	const batch = 1000
	for round := 0; int(env.Svc.Position()) < n; round++ {
		names := make([]string, batch)
		keys := make([][]byte, batch)
		for i := range names {
			names[i] = fmt.Sprintf("replay-%d-%d", round, i)
			keys[i] = must(s.GenerateKey())
		}
		if err := registerClients(ctx, env.Svc, names, keys, 64, nil); err != nil {
			return 0, nil, err
		}
		for t := range 4 {
			topic := fmt.Sprintf("replay/%d/%d", round, t)
			if _, err := env.Svc.NewTopic(ctx, origin, topic); err != nil {
				return 0, nil, err
			}
			if err := attachAll(ctx, env.Svc, topic, names, 500, nil); err != nil {
				return 0, nil, err
			}
		}
		if progress != nil {
			progress(int(env.Svc.Position()))
		}
	}
	return env.Svc.Position(), env.master, nil
}

// ReplayBench replays the log of n events into a fresh key state
// (projections.Rebuild) and restarts a C2 service on it (c2.New), both
// against a bare read of every record (ReadAll) as baseline.
func ReplayBench(ctx context.Context, rep *Report, dir string, n int, step func(string), progress func(int)) error {
	tmp, err := os.MkdirTemp(dir, "e4c2-bench-replay-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	step(fmt.Sprintf("building a log of %d events", n))
	events, master, err := BuildLog(ctx, tmp, n, progress)
	if err != nil {
		return err
	}
	st, err := boltstore.Open(filepath.Join(tmp, "e4c2.db"), nil)
	if err != nil {
		return err
	}
	step(fmt.Sprintf("replaying %d events", events))
	readAll := func() error {
		for from := uint64(1); ; {
			recs, err := st.ReadAll(ctx, from, 4096)
			if err != nil {
				return err
			}
			if len(recs) == 0 {
				return nil
			}
			from = recs[len(recs)-1].Position + 1
		}
	}
	best := func(f func() error) (time.Duration, error) {
		b := time.Duration(1 << 62)
		for range 3 {
			t0 := time.Now()
			if err := f(); err != nil {
				return 0, err
			}
			b = min(b, time.Since(t0))
		}
		return b, nil
	}
	base, err := best(readAll)
	if err != nil {
		st.Close()
		return fmt.Errorf("read log: %w", err)
	}
	rebuild, err := best(func() error {
		ks := projections.NewKeyState()
		_, err := projections.Rebuild(ctx, st, projections.AsOf{}, ks)
		return err
	})
	st.Close()
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	rep.Add(GroupStore, storeTitle, Row{
		Op: "replay (Rebuild)", Size: int(events), SizeKind: "n", Value: float64(rebuild) / 1e6, Unit: "ms",
		Baseline: "ReadAll", BaselineValue: float64(base) / 1e6,
		Note: fmt.Sprintf("%.0f events/s", float64(events)/rebuild.Seconds()),
	}.withRatio())

	step("restarting a C2 service on the log")
	t0 := time.Now()
	env, err := openC2(ctx, tmp, standard.New(), core.SymKey, master, 0)
	if err != nil {
		return err
	}
	start := time.Since(t0)
	env.Close()
	rep.Add(GroupStore, storeTitle, Row{
		Op: "replay (c2.New)", Size: int(events), SizeKind: "n", Value: float64(start) / 1e6, Unit: "ms",
		Baseline: "ReadAll", BaselineValue: float64(base) / 1e6,
		Note: fmt.Sprintf("%.0f events/s, includes opening the store and keyring", float64(events)/start.Seconds()),
	}.withRatio())
	return nil
}
