package automation

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
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

// noHeads hides the store's stream list: an engine on it resumes by
// scanning the log from position 1 (the full replay of its state).
type noHeads struct{ eventstore.Store }

// engineState is the engine's state that a start rebuilds: the rules
// known, each one's status, spec position and whether it compiled, the
// compiled versions, and the depths of recent fires.
type engineState struct {
	Known    []string
	Active   map[string]string
	Compiled []string
	Depths   map[string]int
}

func stateOfEngine(e *Engine) engineState {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := engineState{Active: map[string]string{}, Depths: map[string]int{}}
	for id := range e.known {
		st.Known = append(st.Known, id)
	}
	slices.Sort(st.Known)
	for id, en := range e.active {
		st.Active[id] = fmt.Sprintf("%s@%d compiled=%v", en.status, en.specPos, en.c != nil)
	}
	for k := range e.compiled {
		st.Compiled = append(st.Compiled, k)
	}
	slices.Sort(st.Compiled)
	for k, v := range e.depths.m {
		st.Depths[k] = v
	}
	return st
}

// TestResumeEqualsFullReplay: the automation state an engine rebuilds at
// start from its checkpoint (the rule streams up to it, then the log after
// it) equals the state rebuilt by scanning the whole log, and the state
// of the engine that ran: rules created, updated, paused, deleted, fired.
// (The automation state is not in the key-state snapshot: its checkpoint
// plus the rule streams play that role.)
func TestResumeEqualsFullReplay(t *testing.T) {
	w := newWorld(t, core.SymKey)
	for _, c := range []string{"a", "b", "c"} {
		w.addClient(c)
	}
	w.addTopic("sensors/1", "a", "b", "c")
	cp := &projections.MemCheckpoints{}
	e := w.engine(cp, "auto")
	stop := run(t, e)
	ctx := context.Background()
	rule := func(id, event string) Spec {
		return mustSpec(t, `{"id":"`+id+`","trigger":{"event":"event.type == \"`+event+`\""},"action":{"type":"rotate_topic"}}`)
	}
	for _, id := range []string{"leave", "edited", "held", "gone"} {
		if _, err := e.CreateRule(ctx, operator, rule(id, "topic.client_unlinked.v1")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.UpdateRule(ctx, operator, "edited", rule("", "topic.client_linked.v1")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.PauseRule(ctx, operator, "held", "test"); err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteRule(ctx, operator, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.RemoveTopicClient(ctx, operator, c2.ByName("a"), "sensors/1"); err != nil {
		t.Fatal(err)
	}
	w.settle(e)
	ran := stateOfEngine(e)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(ran.Depths) == 0 || len(ran.Known) != 3 {
		t.Fatalf("the scenario did not fire or lost a rule: %+v", ran)
	}
	resumed := w.engine(cp, "auto")
	scan, err := New(Config{Store: noHeads{w.store}, Service: w.svc, Clock: w.clock.Now, Checkpoints: cp,
		CheckpointName: "auto", TickInterval: -1, CheckpointEvery: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	run(t, resumed)
	run(t, scan)
	w.settle(resumed, scan)
	if got := stateOfEngine(resumed); !reflect.DeepEqual(got, ran) {
		t.Fatalf("resumed from the checkpoint:\n%+v\nthe engine that ran:\n%+v", got, ran)
	}
	if got := stateOfEngine(scan); !reflect.DeepEqual(got, ran) {
		t.Fatalf("rebuilt by scanning the log:\n%+v\nthe engine that ran:\n%+v", got, ran)
	}
}
