package automation

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/boltstore"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

// subscribeFrom records where the engine subscribes.
type subscribeFrom struct {
	*boltstore.Store
	from atomic.Uint64
}

func (s *subscribeFrom) Subscribe(ctx context.Context, from uint64, fn func(eventstore.Record) error) error {
	s.from.Store(from)
	return s.Store.Subscribe(ctx, from, fn)
}

// TestResumeReadsRuleStreamsNotTheLog: an engine with a checkpoint learns
// its rules from the rule streams and subscribes after the checkpoint, not
// from position 1 (a start at 10 M events must not scan them all), and its
// rules still fire.
func TestResumeReadsRuleStreamsNotTheLog(t *testing.T) {
	w := newWorld(t, core.SymKey)
	for _, c := range []string{"a", "b", "c"} {
		w.addClient(c)
	}
	w.addTopic("sensors/1", "a", "b", "c")
	cp := &projections.MemCheckpoints{}
	e := w.engine(cp, "auto")
	stop := run(t, e)
	ctx := context.Background()
	if _, err := e.CreateRule(ctx, operator, mustSpec(t, `{"id":"leave",
		"trigger":{"event":"event.type == \"topic.client_unlinked.v1\""},"action":{"type":"rotate_topic"}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.RemoveTopicClient(ctx, operator, c2.ByName("a"), "sensors/1"); err != nil {
		t.Fatal(err)
	}
	w.settle(e)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	saved, _ := cp.Load("auto")
	if saved == 0 {
		t.Fatal("no checkpoint")
	}
	wrapped := &subscribeFrom{Store: w.store}
	e2, err := New(Config{Store: wrapped, Service: w.svc, Clock: w.clock.Now, Checkpoints: cp,
		CheckpointName: "auto", TickInterval: -1, CheckpointEvery: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	run(t, e2)
	if _, err := w.svc.RemoveTopicClient(ctx, operator, c2.ByName("b"), "sensors/1"); err != nil {
		t.Fatal(err)
	}
	w.settle(e2)
	if got := wrapped.from.Load(); got != saved+1 {
		t.Fatalf("subscribed from %d, want %d (after the checkpoint)", got, saved+1)
	}
	if n := len(w.ruleEvents("leave", TypeRuleFired)); n != 2 {
		t.Fatalf("%d fires, want 2 (the rule known from its stream fires after the restart)", n)
	}
}
