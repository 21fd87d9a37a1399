package automation

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/e4c2/e4c2/internal/testwait"
	"github.com/e4c2/e4c2/suites/core"
)

// runaway is a condition within MaxPredicateDepth that would run for hours:
// 10^10 iterations of a predicate that allocates nothing.
const runaway = `any(1..100000, any(1..100000, # < 0))`

// nested returns the probe's expression: depth levels of any(topics, ...).
func nested(depth int) string {
	return strings.Repeat("any(topics, ", depth) + "true" + strings.Repeat(")", depth)
}

// vmRunning reports whether any goroutine of the process is inside expr's
// VM: the proof that an evaluation stopped consuming CPU, not only that its
// caller got an answer.
func vmRunning() bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Contains(string(buf[:n]), "expr-lang/expr/vm.(*VM).Run")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// bigVM is a VM whose memory budget lets runaway run.
func bigVM() *vm.VM { return &vm.VM{MemoryBudget: 1 << 40} }

// budgetEngine is an engine whose memory budget lets runaway run: only the
// time budget (or the context) can stop it.
func budgetEngine(t *testing.T, w *world, budget time.Duration) *Engine {
	t.Helper()
	e, err := New(Config{Store: w.store, Service: w.svc, Clock: w.clock.Now, TickInterval: -1,
		CheckpointEvery: time.Millisecond, MemoryBudget: 1 << 40, EvalBudget: budget,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Predicates nested past MaxPredicateDepth are refused at compile time
// with the position of the call too deep, like any compile error; the
// probe's 6 levels over topics among them.
func TestPredicateDepthRefused(t *testing.T) {
	w := newWorld(t, core.SymKey)
	e := w.engine(nil, "a")
	ctx := context.Background()
	cases := []struct {
		name, field, src string
		line, column     int
	}{
		{"probe: 6 levels of any", "trigger.event", nested(6), 1, 24},
		{"3 levels of any", "trigger.event", nested(3), 1, 24},
		{"filter map count", "targets", `topics | filter(count(clients, any(topics, .members > 0)) > 0)`, 1, 31},
		{"second line", "targets", "topics | filter(\n  all(clients, none(topics, true)))", 2, 15},
		{"sortBy reduce groupBy", "targets", `sortBy(topics, len(groupBy(clients, reduce(topics, #acc, 0))))`, 1, 36},
		{"braced body", "targets", `map(topics, { let x = 1; find(clients, one(topics, x > 0)) })`, 1, 39},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := Spec{ID: "deep", Action: Action{Type: ActionRotateTopic}}
			if tc.field == "trigger.event" {
				spec.Trigger.Event = tc.src
			} else {
				spec.Trigger.Every = Duration(time.Hour)
				spec.Targets = tc.src
			}
			for _, op := range []func() error{
				func() error { _, err := e.CreateRule(ctx, operator, spec); return err },
				func() error { _, err := e.DryRun(ctx, spec, &Event{}); return err },
			} {
				err := op()
				var ce *CompileError
				if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidRule) {
					t.Fatalf("err = %v, want a CompileError", err)
				}
				if ce.Field != tc.field || ce.Line != tc.line || ce.Column != tc.column || !strings.Contains(ce.Message, "nests predicates 3 deep") {
					t.Fatalf("got %s %d:%d %q, want %s %d:%d", ce.Field, ce.Line, ce.Column, ce.Message, tc.field, tc.line, tc.column)
				}
			}
		})
	}
	// Two levels are fine, and so are predicates one after another.
	for _, src := range []string{
		nested(2),
		`any(topics, any(clients, .name == "x")) && all(topics, .members >= 0) && count(clients, .pending > 0) >= 0`,
	} {
		if _, err := compileSpec(Spec{ID: "ok", Trigger: Trigger{Event: src}, Action: Action{Type: ActionRotateTopic}}, core.SymKey, defaultMaxNodes); err != nil {
			t.Fatalf("%s: %v", src, err)
		}
	}
	if w.lastPos() != 0 {
		t.Fatal("a refused rule was recorded")
	}
}

// The guard inserted into predicate bodies changes no result.
func TestGuardKeepsResults(t *testing.T) {
	env := &Env{Topics: []Topic{{Name: "a", Members: 2, Clients: []string{"x", "y"}}, {Name: "b", Members: 0}},
		Clients: []Client{{Name: "x"}, {Name: "y", Pending: 3}}}
	e := &Engine{cfg: Config{EvalBudget: time.Second}}
	for src, want := range map[string]string{
		`topics | filter(.members > 0) | map(.name)`:                     `["a"]`,
		`map(topics, { let n = .members; n * 2 })`:                       `[4,0]`,
		`count(clients, .pending > 0)`:                                   `1`,
		`sum(topics, .members)`:                                          `2`,
		`reduce(topics, #acc + .members, 10)`:                            `12`,
		`sortBy(clients, .pending, "desc") | map(.name)`:                 `["y","x"]`,
		`find(topics, any(.clients, # == "y")).name`:                     `"a"`,
		`len(groupBy(clients, .pending))`:                                `2`,
		`all(topics, .members >= 0) && all(topics, .name != "")`:         `true`,
		`topics | filter(.members > 0) | map(.clients) | flatten()`:      `["x","y"]`,
		`findLastIndex(topics, true) + findIndex(topics, .members == 0)`: `2`,
	} {
		p, err := compileExpr("targets", src, defaultMaxNodes)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		out, err := e.runGuarded(context.Background(), bigVM(), p, env)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		got, _ := json.Marshal(out)
		if string(got) != want {
			t.Fatalf("%s = %s, want %s", src, got, want)
		}
	}
}

// A runaway evaluation stops within its time budget: the goroutine that
// ran it returns and no goroutine is left inside the VM.
func TestEvalBudgetStopsRunaway(t *testing.T) {
	w := newWorld(t, core.SymKey)
	e := budgetEngine(t, w, 20*time.Millisecond)
	c, err := compileSpec(Spec{ID: "slow", Trigger: Trigger{Event: runaway}, Action: Action{Type: ActionRotateTopic}}, core.SymKey, defaultMaxNodes)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := e.evalCond(context.Background(), bigVM(), c, &Env{})
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the evaluation is still running 10s after its 20ms budget")
	}
	if !errors.Is(err, ErrBudgetExceeded) || !errors.Is(err, ErrEvaluation) {
		t.Fatalf("err = %v", err)
	}
	t.Logf("stopped after %s (budget 20ms)", time.Since(start))
	if vmRunning() {
		t.Fatal("a goroutine is still inside the VM")
	}
}

// A dry run stops when its caller's context is done, whatever its budget.
func TestDryRunStopsOnCancel(t *testing.T) {
	w := newWorld(t, core.SymKey)
	e := budgetEngine(t, w, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := e.DryRun(ctx, Spec{Trigger: Trigger{Event: runaway}, Action: Action{Type: ActionRotateTopic}}, &Event{})
		done <- err
	}()
	testwait.For(t, "the dry run to be evaluating", vmRunning)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the dry run is still running 10s after its context was canceled")
	}
	if vmRunning() {
		t.Fatal("a goroutine is still inside the VM")
	}
	// Without cancellation the budget ends it, as an evaluation error of
	// the plan (what a fire would meet).
	e.cfg.EvalBudget = 10 * time.Millisecond
	p, err := e.DryRun(context.Background(), Spec{Trigger: Trigger{Event: runaway}, Action: Action{Type: ActionRotateTopic}}, &Event{})
	if err != nil || !strings.Contains(p.Error, ErrBudgetExceeded.Error()) {
		t.Fatalf("plan %+v, err %v", p, err)
	}
}

// A live rule whose evaluation exceeds its budget is paused, with the
// reason on record; other rules go on; an operator can resume it.
func TestLiveRulePausedOverBudget(t *testing.T) {
	w := newWorld(t, core.SymKey)
	w.addClient("a")
	w.addTopic("t1", "a")
	e := budgetEngine(t, w, 10*time.Millisecond)
	run(t, e)
	ctx := context.Background()
	if _, err := e.CreateRule(ctx, operator, Spec{ID: "slow-cond",
		Trigger: Trigger{Event: `event.type == "topic.created.v1" && ` + runaway},
		Action:  Action{Type: ActionRotateTopic}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateRule(ctx, operator, Spec{ID: "slow-targets", Trigger: Trigger{Every: Duration(time.Hour)},
		Targets: `map(filter(1..100000, any(1..100000, # < 0)), string(#))`,
		Action:  Action{Type: ActionRotateTopic}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateRule(ctx, operator, mustSpec(t, `{"id":"fast",
		"trigger":{"event":"event.type == \"topic.created.v1\""},"action":{"type":"rotate_topic"}}`)); err != nil {
		t.Fatal(err)
	}
	w.addTopic("t2")
	w.settle(e)
	w.clock.Add(time.Hour)
	if err := e.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	w.addTopic("t3") // the paused rule is not evaluated again
	w.settle(e)
	for _, id := range []string{"slow-cond", "slow-targets"} {
		pauses := w.ruleEvents(id, TypeRulePaused)
		if len(pauses) != 1 {
			t.Fatalf("%s: %d pauses, want 1", id, len(pauses))
		}
		var p reasonEvent
		if err := json.Unmarshal(pauses[0].Data, &p); err != nil {
			t.Fatal(err)
		}
		if p.Kind != PauseKindBudget || !strings.Contains(p.Reason, "time budget") || p.Cause == "" || pauses[0].Meta.Actor != "rule:"+id {
			t.Fatalf("%s: pause %+v by %s", id, p, pauses[0].Meta.Actor)
		}
		r, err := e.GetRule(ctx, id)
		if err != nil || r.Status != StatusPaused || r.Reason != p.Reason {
			t.Fatalf("%s: rule %+v, err %v", id, r, err)
		}
		if n := len(w.ruleEvents(id, TypeRuleFired)); n != 0 {
			t.Fatalf("%s fired %d times", id, n)
		}
	}
	if n := len(w.ruleEvents("fast", TypeRuleFired)); n != 2 {
		t.Fatalf("the other rule fired %d times, want 2", n)
	}
	if vmRunning() {
		t.Fatal("a goroutine is still inside the VM")
	}
	if _, err := e.ResumeRule(ctx, operator, "slow-cond"); err != nil {
		t.Fatal(err)
	}
}
