package benchlog

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/boltstore"
	"github.com/e4c2/e4c2/eventstore/sealing"
	"github.com/e4c2/e4c2/internal/eventcodec"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

// Prepare makes sure dir holds a log of n events (dir/e4c2.db, built by
// the first call and kept: the file "built" records it) and one snapshot
// at position n-tail; it returns the snapshot's path.
func Prepare(tb testing.TB, dir string, n, tail int) string {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "built")); err != nil || string(b) != fmt.Sprint(n) {
		for _, f := range []string{"e4c2.db", "e4c2.db.pos", "e4c2.db.clean"} {
			_ = os.Remove(filepath.Join(dir, f))
		}
		_ = os.RemoveAll(filepath.Join(dir, "snapshots"))
		t0 := time.Now()
		buildLog(tb, dir, n)
		tb.Logf("log built in %v", time.Since(t0).Round(time.Millisecond))
		if err := os.WriteFile(filepath.Join(dir, "built"), []byte(fmt.Sprint(n)), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return snapshotAt(tb, dir, uint64(n-tail))
}

// Master is the master key of the logs Build writes (32 bytes of 0x42).
var Master = bytes.Repeat([]byte{0x42}, 32)

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

// buildLog writes n events into dir/e4c2.db.
func buildLog(tb testing.TB, dir string, n int) {
	ctx := context.Background()
	st, err := boltstore.Open(filepath.Join(dir, "e4c2.db"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	master, err := sealing.MasterKeyFromBytes(Master)
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

// snapshotAt makes sure dir/snapshots holds one valid snapshot at
// position at (made by a replay of the log up to there when it does not:
// the log is built once, the snapshot format may change meanwhile) and
// returns its path.
func snapshotAt(b testing.TB, dir string, at uint64) string {
	ctx := context.Background()
	st, err := boltstore.Open(filepath.Join(dir, "e4c2.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	master, _ := sealing.MasterKeyFromBytes(Master)
	kr, err := sealing.OpenKeyring(ctx, st, master)
	if err != nil {
		b.Fatal(err)
	}
	defer kr.Close()
	sd := &projections.SnapshotDir{Dir: filepath.Join(dir, "snapshots"), Sealer: kr}
	if _, info, err := sd.LoadNewest(ctx, st, nil); err == nil && info.Position == at {
		return info.Path
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
	return info.Path
}
