package projections_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/memstore"
	"github.com/e4c2/e4c2/internal/eventcodec"
	"github.com/e4c2/e4c2/projections"
)

// counter is a Durable projection that counts what it applies.
type counter struct {
	mu       sync.Mutex
	pos      uint64
	applied  []uint64
	restored uint64
}

func (c *counter) Name() string { return "counter" }
func (c *counter) Position() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pos
}
func (c *counter) Apply(r eventstore.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pos = r.Position
	c.applied = append(c.applied, r.Position)
	return nil
}
func (c *counter) Restore(pos uint64) error { c.pos, c.restored = pos, pos; return nil }

func appendTopics(t *testing.T, s eventstore.Store, from, to int) {
	t.Helper()
	g := newLogGen(nil)
	for i := from; i < to; i++ {
		h := domain.TopicHash(topicName(i))
		data, err := eventcodec.Encode(&domain.TopicCreated{Topic: h, Name: topicName(i), Key: domain.NewSecret(make([]byte, 32))},
			domain.TopicStream(h), 1, g.sealer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(context.Background(), domain.TopicStream(h), eventstore.NoStream, eventstore.EventData{
			ID: "ev" + topicName(i), Type: domain.TypeTopicCreated.WireName(), Data: data,
			Meta: eventstore.Metadata{Time: time.Unix(int64(1000+i), 0), Actor: "cli:test"}}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRunnerCatchUpLiveAndCheckpoints(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := memstore.New()
	appendTopics(t, store, 0, 5)
	cp := projections.FileCheckpoints{Dir: t.TempDir()}
	ks, c := projections.NewKeyState(), &counter{}
	r := projections.NewRunner(store, cp, ks, c)
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if r.Position() != 5 || ks.TopicCount() != 5 {
		t.Fatalf("after catch-up: position %d, %d topics", r.Position(), ks.TopicCount())
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	appendTopics(t, store, 5, 8)
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := r.WaitPosition(wctx, 8); err != nil {
		t.Fatal(err)
	}
	if ks.TopicCount() != 8 || len(c.applied) != 8 {
		t.Fatalf("live: %d topics, %d applied", ks.TopicCount(), len(c.applied))
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("run: %v", err)
	}
	if err := r.WaitPosition(context.Background(), 9); err == nil {
		t.Fatal("waiting on a stopped runner returned nil")
	}
	b, err := os.ReadFile(filepath.Join(cp.Dir, "counter.checkpoint"))
	if err != nil || string(b) != "8\n" {
		t.Fatalf("checkpoint %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(cp.Dir, "keystate.checkpoint")); err == nil {
		t.Fatal("in-memory projection checkpointed")
	}
	// A restarted durable projection resumes after its checkpoint; the
	// in-memory one replays everything.
	appendTopics(t, store, 8, 10)
	ks2, c2 := projections.NewKeyState(), &counter{}
	r2 := projections.NewRunner(store, cp, ks2, c2)
	if err := r2.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c2.restored != 8 || len(c2.applied) != 2 || ks2.TopicCount() != 10 {
		t.Fatalf("restart: restored %d, applied %v, %d topics", c2.restored, c2.applied, ks2.TopicCount())
	}
}

func TestFileCheckpointsMalformed(t *testing.T) {
	cp := projections.FileCheckpoints{Dir: t.TempDir()}
	if pos, err := cp.Load("x"); err != nil || pos != 0 {
		t.Fatalf("missing: %d %v", pos, err)
	}
	if err := os.WriteFile(filepath.Join(cp.Dir, "x.checkpoint"), []byte("nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Load("x"); err == nil {
		t.Fatal("malformed checkpoint accepted")
	}
	if err := cp.Save("x", 42); err != nil {
		t.Fatal(err)
	}
	if pos, err := cp.Load("x"); err != nil || pos != 42 {
		t.Fatalf("saved: %d %v", pos, err)
	}
}

func TestRebuildAsOf(t *testing.T) {
	store := memstore.New()
	appendTopics(t, store, 0, 10)
	ctx := context.Background()
	for _, c := range []struct {
		asOf projections.AsOf
		want int
	}{
		{projections.AsOf{}, 10},
		{projections.AsOf{Position: 4}, 4},
		{projections.AsOf{Time: time.Unix(1006, 0)}, 7},
		{projections.AsOf{Position: 3, Time: time.Unix(1006, 0)}, 3},
	} {
		ks := projections.NewKeyState()
		last, err := projections.Rebuild(ctx, store, c.asOf, ks)
		if err != nil {
			t.Fatal(err)
		}
		if ks.TopicCount() != c.want || last != uint64(c.want) {
			t.Errorf("as of %+v: %d topics, last %d, want %d", c.asOf, ks.TopicCount(), last, c.want)
		}
	}
}

func TestKeyStateRejectsCorruptEvent(t *testing.T) {
	ks := projections.NewKeyState()
	err := ks.Apply(eventstore.Record{EventData: eventstore.EventData{Type: "topic.created.v1", Data: []byte{1, 2}}, Position: 1})
	if !errors.Is(err, domain.ErrInvalidEvent) {
		t.Fatalf("corrupt: %v", err)
	}
	// Events of other components are skipped.
	if err := ks.Apply(eventstore.Record{EventData: eventstore.EventData{Type: "rule.created.v1", Data: []byte{9}}, Position: 2}); err != nil {
		t.Fatal(err)
	}
	if ks.Position() != 2 {
		t.Fatalf("position %d", ks.Position())
	}
}
