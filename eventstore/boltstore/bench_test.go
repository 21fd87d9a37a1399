package boltstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e4c2/e4c2/eventstore"
)

// benchEvent is a small event with a ~100-byte payload.
func benchEvent(i int) eventstore.EventData {
	var id [16]byte
	_, _ = rand.Read(id[:])
	data := make([]byte, 100)
	copy(data, fmt.Sprintf(`{"n":%d,"pad":"`, i))
	for j := range data[len(data)-20:] {
		data[len(data)-20+j] = 'x'
	}
	return eventstore.EventData{
		ID: hex.EncodeToString(id[:]), Type: "client.key_rotated.v1", Data: data,
		Meta: eventstore.Metadata{Time: time.Unix(1767225600, int64(i)).UTC(), Actor: "system", Suite: "standard", Mode: "sk"},
	}
}

// fsyncBaseline measures one bare append+fsync of a small record to a file
// in dir: the floor of any durable single-writer append on this disk.
func fsyncBaseline(b *testing.B, dir string) time.Duration {
	f, err := os.OpenFile(filepath.Join(dir, "baseline"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rec := make([]byte, 200)
	var ds []time.Duration
	for i := 0; i < 50; i++ {
		start := time.Now()
		if _, err := f.Write(rec); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

// BenchmarkBaselineFsync is the bare append+fsync on its own.
func BenchmarkBaselineFsync(b *testing.B) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "baseline"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rec := make([]byte, 200)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.Write(rec); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppend measures durable appends, one event per call, with 1, 8
// and 64 concurrent writers (each on its own stream with an exact expected
// version). It reports events/s and, against a same-run bare
// append+fsync in the same directory, the per-call latency ratio. Each
// runs with the freelist written at Close only (freelist=close, the
// default) and at every commit (freelist=commit), so that one run compares
// them.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		for _, fl := range []string{"close", "commit"} {
			b.Run("writers="+strconv.Itoa(writers)+"/freelist="+fl, func(b *testing.B) {
				benchAppend(b, writers, &Options{freelistEveryCommit: fl == "commit"})
			})
		}
	}
}

func benchAppend(b *testing.B, writers int, opts *Options) {
	dir := b.TempDir()
	before := fsyncBaseline(b, dir)
	s, err := Open(filepath.Join(dir, "events.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	evs := make([]eventstore.EventData, 1024)
	for i := range evs {
		evs[i] = benchEvent(i)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("client-%d", w)
			var version int64
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				ev := evs[i%int64(len(evs))]
				ev.ID = strconv.FormatInt(i, 16)
				v, err := s.Append(ctx, stream, version, ev)
				if err != nil {
					b.Error(err)
					return
				}
				version = int64(v)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	// The disk is shared: take the baseline on both sides of the run.
	base := (before + fsyncBaseline(b, dir)) / 2
	perCall := elapsed * time.Duration(writers) / time.Duration(b.N)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(base.Microseconds()), "fsync-µs")
	b.ReportMetric(float64(perCall)/float64(base), "latency/fsync")
	if c := s.commits.Load(); c > 0 {
		b.ReportMetric(float64(s.batched.Load())/float64(c), "appends/commit")
	}
}

var (
	replayOnce sync.Once
	replayPath string
	replayN    int
	replayErr  error
)

// replayFile builds, once per benchmark binary run, a store of N small
// events (N = $E4C2_REPLAY_EVENTS, default 1,000,000) spread over 1,000
// streams. TestMain removes it when the process ends.
func replayFile(b *testing.B) (string, int) {
	replayOnce.Do(func() {
		replayN = 1_000_000
		if v := os.Getenv("E4C2_REPLAY_EVENTS"); v != "" {
			if replayN, replayErr = strconv.Atoi(v); replayErr != nil {
				return
			}
		}
		dir, err := os.MkdirTemp("", "e4c2-replay-")
		if err != nil {
			replayErr = err
			return
		}
		replayPath = filepath.Join(dir, "events.db")
		s, err := Open(replayPath, nil)
		if err != nil {
			replayErr = err
			return
		}
		defer s.Close()
		const perCall = 1000
		batch := make([]eventstore.EventData, perCall)
		for done := 0; done < replayN; done += perCall {
			n := min(perCall, replayN-done)
			for i := 0; i < n; i++ {
				batch[i] = benchEvent(done + i)
			}
			if _, err := s.Append(context.Background(), fmt.Sprintf("topic-%d", (done/perCall)%1000), eventstore.Any, batch[:n]...); err != nil {
				replayErr = err
				return
			}
		}
	})
	if replayErr != nil {
		b.Fatal(replayErr)
	}
	return replayPath, replayN
}

// BenchmarkReplay reads the whole log once per iteration, through ReadAll
// pages and through Subscribe, and reports events/s.
func BenchmarkReplay(b *testing.B) {
	path, n := replayFile(b)
	s, err := Open(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	b.Run("ReadAll", func(b *testing.B) {
		start := time.Now()
		for i := 0; i < b.N; i++ {
			var seen int
			for from := uint64(1); ; {
				page, err := s.ReadAll(ctx, from, 4096)
				if err != nil {
					b.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				seen += len(page)
				from = page[len(page)-1].Position + 1
			}
			if seen != n {
				b.Fatalf("replayed %d events, want %d", seen, n)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/time.Since(start).Seconds(), "events/s")
	})
	b.Run("Subscribe", func(b *testing.B) {
		start := time.Now()
		for i := 0; i < b.N; i++ {
			sctx, cancel := context.WithCancel(ctx)
			var seen int
			err := s.Subscribe(sctx, 1, func(r eventstore.Record) error {
				seen++
				if seen == n {
					cancel()
				}
				return nil
			})
			cancel()
			if seen != n || err != context.Canceled {
				b.Fatalf("subscription delivered %d events (%v), want %d", seen, err, n)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/time.Since(start).Seconds(), "events/s")
	})
}

// TestMain removes the replay file the benchmarks built, if any.
func TestMain(m *testing.M) {
	code := m.Run()
	if replayPath != "" {
		_ = os.RemoveAll(filepath.Dir(replayPath))
	}
	os.Exit(code)
}
