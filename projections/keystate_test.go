package projections_test

import (
	"context"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/boltstore"
	"github.com/e4c2/e4c2/internal/eventcodec"
	"github.com/e4c2/e4c2/projections"
)

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// measureBytesPerClient builds the key state of clients clients with
// perClient topics each (topics/10 topics in all... one per 100 clients)
// and returns the heap it holds per client.
func measureBytesPerClient(t testing.TB, clients, perClient int) float64 {
	topics := max(clients/100, perClient)
	before := heap()
	ks := projections.NewKeyState()
	g := newLogGen(func(r eventstore.Record) {
		if err := ks.Apply(r); err != nil {
			t.Fatal(err)
		}
	})
	g.population(clients, topics, perClient)
	g = nil
	after := heap()
	if ks.ClientCount() != clients || ks.TopicCount() != topics {
		t.Fatalf("state has %d clients, %d topics", ks.ClientCount(), ks.TopicCount())
	}
	info, _ := ks.Client(domain.ClientID(clientName(clients - 1)))
	if info.Topics != perClient {
		t.Fatalf("last client has %d topics, want %d", info.Topics, perClient)
	}
	runtime.KeepAlive(ks)
	return float64(after-before) / float64(clients)
}

// TestKeyStateMemory checks the 1 KiB per client budget at 100,000 clients
// with 10 topics each (10,000 clients with -short).
func TestKeyStateMemory(t *testing.T) {
	clients := 100_000
	if testing.Short() || raceEnabled {
		clients = 10_000
	}
	per := measureBytesPerClient(t, clients, 10)
	t.Logf("KeyState: %.0f bytes/client at %d clients x 10 topics", per, clients)
	if per > 1024 {
		t.Fatalf("%.0f bytes per client, budget 1024", per)
	}
	if per < 64 {
		t.Fatalf("%.0f bytes per client: measurement broken", per)
	}
}

func BenchmarkKeyStateMemory(b *testing.B) {
	for range b.N {
		b.ReportMetric(measureBytesPerClient(b, 100_000, 10), "bytes/client")
	}
}

var (
	replayOnce sync.Once
	replayLog  []eventstore.Record
)

// BenchmarkReplay1M replays 1,000,000 records (sealed keys, commands and
// deliveries) into a fresh KeyState per iteration; target >= 500,000
// events/s. BenchmarkDecodeOnly is the same-run baseline: decoding alone.
func replayRecords() []eventstore.Record {
	replayOnce.Do(func() {
		replayLog = make([]eventstore.Record, 0, 1_000_000)
		g := newLogGen(func(r eventstore.Record) { replayLog = append(replayLog, r) })
		g.chain = true
		g.population(10_000, 1_000, 10)
		g.traffic(10_000, 1_000, 1_000_000)
	})
	return replayLog
}

func BenchmarkReplay1M(b *testing.B) {
	replayRecords()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		ks := projections.NewKeyState()
		for i := range replayLog {
			if err := ks.Apply(replayLog[i]); err != nil {
				b.Fatal(err)
			}
		}
		if ks.PendingCount() != 0 {
			b.Fatalf("%d commands left pending", ks.PendingCount())
		}
	}
	el := time.Since(start)
	b.ReportMetric(float64(len(replayLog)*b.N)/el.Seconds(), "events/s")
}

func BenchmarkDecodeOnly(b *testing.B) {
	recs := replayRecords()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		for i := range recs {
			if _, err := eventcodec.Decode(recs[i].Type, recs[i].Data); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(recs)*b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkReplay1MBolt is BenchmarkReplay1M reading the log from the
// embedded store (eventstore/boltstore) through Rebuild, as a restart does.
// The in-memory replay above is its same-run baseline.
func BenchmarkReplay1MBolt(b *testing.B) {
	recs := replayRecords()
	store, err := boltstore.Open(filepath.Join(b.TempDir(), "e4c2.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	for i := 0; i < len(recs); i += 50_000 {
		if err := store.Import(ctx, recs[i:min(i+50_000, len(recs))]); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		ks := projections.NewKeyState()
		last, err := projections.Rebuild(ctx, store, projections.AsOf{}, ks)
		if err != nil {
			b.Fatal(err)
		}
		if last != uint64(len(recs)) || ks.PendingCount() != 0 {
			b.Fatalf("replayed to %d, %d pending", last, ks.PendingCount())
		}
	}
	b.ReportMetric(float64(len(recs)*b.N)/time.Since(start).Seconds(), "events/s")
}
