package c2_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/boltstore"
	"github.com/e4c2/e4c2/eventstore/sealing"
	"github.com/e4c2/e4c2/internal/eventcodec"
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

var benchMaster = bytes.Repeat([]byte{0x42}, 32)

// logGen writes a realistic C2 log fast: clients registered and linked to
// topics, then topic rotations whose commands are mostly confirmed or
// accepted (a few stay pending, a few fail), devices seen, client keys
// rotated. Every event is decided by domain.Decide on the state the log
// has so far and sealed with the store's keyring, like the service does.
type logGen struct {
	ctx    context.Context
	st     *boltstore.Store
	sealer sealing.Sealer
	ks     *projections.KeyState
	heads  map[string]eventstore.StreamHead
	batch  []eventstore.Record
	pos    uint64
	rng    *rand.Rand
	now    time.Time
}

func (g *logGen) newID() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	return hex.EncodeToString(b[:])
}

func (g *logGen) decide(tb testing.TB, st domain.State, cmd domain.Command) {
	st.Mode = core.SymKey
	d, err := domain.Decide(st, cmd)
	if err != nil {
		tb.Fatalf("%s: %v", cmd.Op(), err)
	}
	if len(d.Events) == 0 {
		return
	}
	h := g.heads[d.Stream]
	if d.Expected >= 0 && uint64(d.Expected) != h.Version {
		tb.Fatalf("%s: decided on version %d of %s, head %d", cmd.Op(), d.Expected, d.Stream, h.Version)
	}
	g.now = g.now.Add(time.Millisecond)
	meta := eventstore.Metadata{Time: g.now, Actor: "cli:bench", CorrelationID: g.newID(), Suite: "standard", Mode: "sk"}
	evs, err := eventcodec.EncodeDecision(d, g.sealer, meta, g.newID)
	if err != nil {
		tb.Fatal(err)
	}
	for _, ev := range evs {
		g.pos++
		r := eventstore.Record{EventData: ev, Stream: d.Stream, Version: h.Version + 1, Position: g.pos, PrevHash: h.Hash}
		h = eventstore.StreamHead{Version: r.Version, Hash: eventstore.HashRecord(&r)}
		if err := g.ks.Apply(r); err != nil {
			tb.Fatal(err)
		}
		g.batch = append(g.batch, r)
	}
	g.heads[d.Stream] = h
	if len(g.batch) >= 16384 {
		g.flush(tb)
	}
}

func (g *logGen) flush(tb testing.TB) {
	if len(g.batch) == 0 {
		return
	}
	if err := g.st.Import(g.ctx, g.batch); err != nil {
		tb.Fatal(err)
	}
	g.batch = g.batch[:0]
}

func (g *logGen) key() []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = byte(g.rng.Uint32())
	}
	return k
}

// buildStartupLog writes n events into dir/e4c2.db.
func buildStartupLog(tb testing.TB, dir string, n int) {
	ctx := context.Background()
	st, err := boltstore.Open(filepath.Join(dir, "e4c2.db"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	master, err := sealing.MasterKeyFromBytes(benchMaster)
	if err != nil {
		tb.Fatal(err)
	}
	kr, err := sealing.OpenKeyring(ctx, st, master)
	if err != nil {
		tb.Fatal(err)
	}
	g := &logGen{ctx: ctx, st: st, sealer: kr, ks: projections.NewKeyState(), heads: map[string]eventstore.StreamHead{},
		rng: rand.New(rand.NewPCG(7, 7)), now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	const clients, topics, perTopic = 5000, 200, 50
	ids := make([]domain.ID, clients)
	for i := range ids {
		name := fmt.Sprintf("dev-%05d", i)
		ids[i] = domain.ClientID(name)
		g.decide(tb, domain.State{Client: g.ks.ClientView(ids[i])}, domain.RegisterClient{Client: ids[i], Name: name, Role: domain.Role(1 + i%3), Key: g.key()})
	}
	names := make([]string, topics)
	for t := range names {
		names[t] = fmt.Sprintf("site/%03d/data", t)
		h := domain.TopicHash(names[t])
		g.decide(tb, domain.State{Topic: g.ks.TopicView(h)}, domain.PutTopic{Topic: names[t], Key: g.key()})
		members := make([]domain.ID, perTopic)
		for j := range members {
			members[j] = ids[(t*perTopic+j)%clients]
		}
		g.decide(tb, domain.State{Topic: g.ks.TopicView(h), Targets: g.ks.ClientViews(members)}, domain.LinkClients{Topic: h, Clients: members})
	}
	var after uint64
	settle := func() {
		for _, q := range g.ks.PendingAfter(after, 0) {
			after = q.Seq()
			x := g.rng.IntN(100)
			if x == 0 {
				continue // stays pending: the device is away
			}
			cmd := domain.RecordDelivery{Client: q.Client, Ref: q.Ref, Confirmed: x > 20}
			if x == 1 {
				cmd.Confirmed, cmd.Failed, cmd.Reason = false, true, "bench"
			}
			g.decide(tb, domain.State{}, cmd)
		}
	}
	settle()
	for int(g.pos) < n {
		switch x := g.rng.IntN(100); {
		case x < 90:
			name := names[g.rng.IntN(topics)]
			g.decide(tb, domain.State{Topic: g.ks.TopicView(domain.TopicHash(name))}, domain.PutTopic{Topic: name, Key: g.key()})
		case x < 95:
			id := ids[g.rng.IntN(clients)]
			g.decide(tb, domain.State{Client: g.ks.ClientView(id)}, domain.RecordSeen{Client: id})
		default:
			id := ids[g.rng.IntN(clients)]
			g.decide(tb, domain.State{Client: g.ks.ClientView(id)}, domain.RotateClientKey{Client: id, Key: g.key()})
		}
		settle()
	}
	g.flush(tb)
	tb.Logf("built a log of %d events (%d pending, %d clients, %d topics)", g.pos, g.ks.PendingCount(), clients, topics)
}

// startupSnapshot makes sure dir/snapshots holds one valid snapshot at
// position at (made by a replay of the log up to there when it does not:
// the log is built once, the snapshot format may change meanwhile).
func startupSnapshot(b *testing.B, dir string, at uint64) []string {
	ctx := context.Background()
	st, err := boltstore.Open(filepath.Join(dir, "e4c2.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	master, _ := sealing.MasterKeyFromBytes(benchMaster)
	kr, err := sealing.OpenKeyring(ctx, st, master)
	if err != nil {
		b.Fatal(err)
	}
	defer kr.Close()
	sd := &projections.SnapshotDir{Dir: filepath.Join(dir, "snapshots"), Sealer: kr}
	if _, info, err := sd.LoadNewest(ctx, st, nil); err == nil && info.Position == at {
		return []string{info.Path}
	}
	_ = os.RemoveAll(sd.Dir)
	ks := projections.NewKeyState()
	if _, err := projections.Rebuild(ctx, st, projections.AsOf{Position: at}, ks); err != nil {
		b.Fatal(err)
	}
	info, err := sd.Save(ks)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("snapshot at %d: %d bytes", info.Position, info.Size)
	return []string{info.Path}
}

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
	if _, err := os.Stat(filepath.Join(dir, "built")); err != nil {
		_ = os.Remove(filepath.Join(dir, "e4c2.db"))
		_ = os.Remove(filepath.Join(dir, "e4c2.db.pos"))
		_ = os.RemoveAll(filepath.Join(dir, "snapshots"))
		t0 := time.Now()
		buildStartupLog(b, dir, n)
		b.Logf("log built in %v", time.Since(t0).Round(time.Millisecond))
		if err := os.WriteFile(filepath.Join(dir, "built"), []byte(fmt.Sprint(n)), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	snaps := startupSnapshot(b, dir, uint64(n-tail))
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
				master, _ := sealing.MasterKeyFromBytes(benchMaster)
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
