package c2_test

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/eventstore/boltstore"
	"github.com/e4c2/e4c2/eventstore/sealing"
	"github.com/e4c2/e4c2/internal/benchlog"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/standard"
)

// The start-up benchmark is opt-in by size: the default log is small so
// that `go test -bench .` stays quick; the figures of the integrity issue
// come from
//
//	go test ./c2 -run '^$' -bench Startup -benchtime 3x \
//	    -startup.events 10000000 -startup.dir /var/tmp/e4c2-startup-10M
//
// The log is built once per directory (a fast path: decisions applied to a
// local key state and written with Import in large transactions, not one
// fsync per operation) and reused by later runs.
var (
	startupEvents = flag.Int("startup.events", 100_000, "events in the log of BenchmarkStartup")
	startupDir    = flag.String("startup.dir", "", "directory to build (once) and keep the log of BenchmarkStartup (default: a temporary one)")
	startupTail   = flag.Int("startup.tail", 50_000, "events after the snapshot (half the default cadence)")
)

// BenchmarkStartup measures a C2 start (c2.New until the read models hold
// the whole log) on the same log two ways: from the newest snapshot plus
// the tail, and by a full replay from zero. Opening the store and the
// keyring is reported apart (open-ms), as the server does it before New.
func BenchmarkStartup(b *testing.B) {
	n := *startupEvents
	dir := *startupDir
	if dir == "" {
		dir = b.TempDir()
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	tail := min(*startupTail, n/2)
	snaps := []string{benchlog.Prepare(b, dir, n, tail)}
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	for _, mode := range []string{"snapshot", "full"} {
		b.Run(fmt.Sprintf("%s/events=%d", mode, n), func(b *testing.B) {
			ctx := context.Background()
			var openTotal time.Duration
			for range b.N {
				b.StopTimer()
				t0 := time.Now()
				st, err := boltstore.Open(filepath.Join(dir, "e4c2.db"), nil)
				if err != nil {
					b.Fatal(err)
				}
				master, _ := sealing.MasterKeyFromBytes(benchlog.Master)
				kr, err := sealing.OpenKeyring(ctx, st, master)
				if err != nil {
					b.Fatal(err)
				}
				openTotal += time.Since(t0)
				b.StartTimer()
				svc, err := c2.New(c2.Config{Store: st, Sealer: kr, Suite: standard.New(), Mode: core.SymKey,
					AuditMax: 100_000, Snapshots: &projections.SnapshotDir{Dir: filepath.Join(dir, "snapshots"), Sealer: kr},
					FromScratch: mode == "full", SnapshotEvery: 1 << 62, Logger: quiet})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if testing.Verbose() {
					b.Logf("%s: c2.New %v", mode, time.Since(t0)-openTotal)
				}
				if mode == "snapshot" && svc.LoadedSnapshot().Position == 0 {
					b.Fatal("the snapshot was not used")
				}
				if svc.Position() < uint64(n) {
					b.Fatalf("started at position %d of %d", svc.Position(), n)
				}
				// Close writes a shutdown snapshot: drop it, so that every
				// iteration starts from the build's snapshot and its tail.
				svc.Close()
				now, _ := filepath.Glob(filepath.Join(dir, "snapshots", "keystate-*.snap"))
				for _, p := range now {
					if p != snaps[0] {
						_ = os.Remove(p)
					}
				}
				kr.Close()
				st.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(openTotal.Milliseconds())/float64(b.N), "open-ms")
		})
	}
}
