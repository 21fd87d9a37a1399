//go:build unix

package server_test

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/e4c2/e4c2/internal/benchlog"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/server"
)

// The whole-server start benchmark, like c2's BenchmarkStartup, is opt-in
// by size; the README figures come from
//
//	go test ./internal/server -run '^$' -bench ServerStart -benchtime 5x \
//	    -serverstart.events 10000000 -serverstart.dir /var/tmp/e4c2-startup-10M
//
// (the same directory as c2's benchmark reuses its log).
var (
	serverStartEvents = flag.Int("serverstart.events", 100_000, "events in the log of BenchmarkServerStart")
	serverStartDir    = flag.String("serverstart.dir", "", "directory to build (once) and keep the log of BenchmarkServerStart (default: a temporary one)")
	serverStartTail   = flag.Int("serverstart.tail", 50_000, "events after the snapshot")
)

// BenchmarkServerStart measures what `e4c2 serve` does until it is ready:
// store open (with its integrity checks), start-up hash-chain check,
// keyring, snapshot load and tail replay, automation, embedded broker,
// delivery worker, API, and a first 200 from /readyz; from the newest
// snapshot (after a clean shutdown) and by a full replay (--from-scratch)
// in the same run. Every iteration stops the server cleanly and drops the
// shutdown snapshot, so each starts from the same snapshot and tail. A
// first, untimed start verifies the whole chain once (the start-up check
// is incremental: a served store has verified everything but its tail),
// on a log written before the freelist was kept in the file writes it,
// and waits for the rule engine to have evaluated the log once; it is
// reported as first-ms (until ready). Left out: the process start and the
// master key derivation of a passphrase (a key file is used).
func BenchmarkServerStart(b *testing.B) {
	n := *serverStartEvents
	dir := *serverStartDir
	if dir == "" {
		dir = b.TempDir()
	}
	tail := min(*serverStartTail, n/2)
	snap := benchlog.Prepare(b, dir, n, tail)
	keyFile := filepath.Join(dir, "master.key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(benchlog.Master)+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.MasterKeyFile = keyFile
	cfg.HTTPListen, cfg.MQTTListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.AdminTokenFile = filepath.Join(dir, "admin.token")
	cfg.SnapshotEvery = 1 << 40
	cfg.AuditMemory = 100_000
	dropNewer := func(b *testing.B) {
		now, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*.snap"))
		for _, p := range now {
			if p != snap {
				_ = os.Remove(p)
			}
		}
	}
	var cpu time.Duration // the process's CPU time spent in the starts of a run
	start := func(b *testing.B, cfg config.Config) (*server.Server, time.Duration) {
		c0 := cpuTime()
		defer func() { cpu += cpuTime() - c0 }()
		t0 := time.Now()
		srv, err := server.Start(context.Background(), cfg, server.Options{Out: io.Discard, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		if testing.Verbose() {
			b.Logf("Start returned after %v", time.Since(t0).Round(time.Millisecond))
		}
		for {
			resp, err := http.Get("http://" + srv.HTTPAddr() + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			time.Sleep(time.Millisecond)
		}
		return srv, time.Since(t0)
	}
	shutdown := func(b *testing.B, srv *server.Server) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			b.Fatal(err)
		}
		dropNewer(b)
	}
	srv, first := start(b, cfg)
	// A log without an automation checkpoint (this one: written without a
	// server) is evaluated by the rule engine from position 1, in the
	// background; let it finish here, as a served data directory has, so
	// that it does not compete with the measured starts.
	t0 := time.Now()
	for srv.Rules().Position() < uint64(n) {
		time.Sleep(100 * time.Millisecond)
	}
	shutdown(b, srv)
	b.Logf("first start (whole chain verified once): %v; rule engine caught up %v later", first.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	for _, mode := range []string{"snapshot", "full"} {
		b.Run(fmt.Sprintf("%s/events=%d", mode, n), func(b *testing.B) {
			cfg := cfg
			cfg.FromScratch = mode == "full"
			var runs []time.Duration
			cpu = 0
			b.ResetTimer()
			for range b.N {
				srv, took := start(b, cfg)
				b.StopTimer()
				if got := srv.Service().Position(); got < uint64(n) {
					b.Fatalf("started at position %d of %d", got, n)
				}
				if mode == "snapshot" && srv.Service().LoadedSnapshot().Position == 0 {
					b.Fatal("the snapshot was not used")
				}
				runs = append(runs, took)
				shutdown(b, srv)
				b.StartTimer()
			}
			slices.Sort(runs)
			b.ReportMetric(float64(runs[len(runs)/2].Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(runs[0].Microseconds())/1000, "min-ms")
			b.ReportMetric(float64(runs[len(runs)-1].Microseconds())/1000, "max-ms")
			b.ReportMetric(float64(first.Microseconds())/1000, "first-ms")
			// CPU time depends less on the other jobs of a shared machine
			// than the wall clock does (it includes the server's goroutines
			// working in the background meanwhile).
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/start")
		})
	}
}

// cpuTime returns the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
