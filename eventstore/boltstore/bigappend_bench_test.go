package boltstore

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e4c2/e4c2/eventstore"
)

var appendFrom = flag.String("append.from", "", "store file to copy for BenchmarkAppendLargeFile (e.g. the 1 M-event log of c2's BenchmarkStartup)")

// BenchmarkAppendLargeFile compares durable appends (8 writers) with the
// freelist written at Close only (close, the default: commits as before
// the freelist was kept) and at every commit (commit), on two copies of a
// large store (-append.from): its freelist spans many pages, which a fresh
// file's (BenchmarkAppend) does not. The variants alternate, 2 s each,
// b.N rounds; events/s is reported per variant.
func BenchmarkAppendLargeFile(b *testing.B) {
	if *appendFrom == "" {
		b.Skip("-append.from not set")
	}
	dir := b.TempDir()
	open := func(name string, everyCommit bool) *Store {
		dst := filepath.Join(dir, name)
		src, err := os.Open(*appendFrom)
		if err != nil {
			b.Fatal(err)
		}
		defer src.Close()
		out, err := os.Create(dst)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(out, src); err != nil {
			b.Fatal(err)
		}
		if err := out.Close(); err != nil {
			b.Fatal(err)
		}
		s, err := Open(dst, &Options{freelistEveryCommit: everyCommit})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	stores := map[string]*Store{"close": open("close.db", false), "commit": open("commit.db", true)}
	defer func() {
		for _, s := range stores {
			s.Close()
		}
	}()
	counts := map[string]int64{}
	var total time.Duration
	b.ResetTimer()
	for round := range b.N {
		for _, name := range []string{"close", "commit"} {
			n, took := appendFor(b, stores[name], 8, 2*time.Second, fmt.Sprintf("r%d-", round))
			counts[name] += n
			total += took
			b.Logf("round %d freelist=%s: %.0f events/s", round, name, float64(n)/took.Seconds())
		}
	}
	for name, n := range counts {
		b.ReportMetric(float64(n)/(total.Seconds()/2), name+"-events/s")
	}
}

// appendFor runs writers appending one event per call for d and returns
// the appends done and the time taken.
func appendFor(b *testing.B, s *Store, writers int, d time.Duration, prefix string) (int64, time.Duration) {
	var n atomic.Int64
	var wg sync.WaitGroup
	ctx := context.Background()
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("bench-%s%d", prefix, w)
			for i := 0; time.Since(start) < d; i++ {
				if _, err := s.Append(ctx, stream, eventstore.Any, benchEvent(i)); err != nil {
					b.Error(err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return n.Load(), time.Since(start)
}
