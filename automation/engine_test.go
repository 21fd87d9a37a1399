package automation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/testwait"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

// A compile error names its position and nothing is recorded.
func TestCreateRefusesBadExpressions(t *testing.T) {
	w := newWorld(t, core.SymKey)
	e := w.engine(nil, "a")
	ctx := context.Background()
	cases := []struct {
		name, spec       string
		field            string
		line, column     int
		wantCompileError bool
	}{
		{"syntax on line 2", `{"id":"bad1","trigger":{"event":"event.type == \"x\" &&\n  hasPrefix(event.topic, )"},"action":{"type":"rotate_topic"}}`, "trigger.event", 2, 2, true},
		{"unknown field", `{"id":"bad2","trigger":{"event":"event.nosuch == 1"},"action":{"type":"rotate_topic"}}`, "trigger.event", 1, 6, true},
		{"not a bool", `{"id":"bad3","trigger":{"event":"event.position + 1"},"action":{"type":"rotate_topic"}}`, "trigger.event", 1, 0, true},
		{"targets not a list", `{"id":"bad4","trigger":{"every":"1h"},"targets":"len(topics) > 2","action":{"type":"rotate_topic"}}`, "targets", 1, 0, true},
		{"pk action in sk", `{"id":"bad5","trigger":{"every":"1h"},"targets":"topics","action":{"type":"share_pubkeys"}}`, "", 0, 0, false},
		{"two triggers", `{"id":"bad6","trigger":{"every":"1h","cron":"* * * * *"},"targets":"topics","action":{"type":"rotate_topic"}}`, "", 0, 0, false},
		{"bad cron", `{"id":"bad7","trigger":{"cron":"61 * * * *"},"targets":"topics","action":{"type":"rotate_topic"}}`, "", 0, 0, false},
		{"schedule without targets", `{"id":"bad8","trigger":{"every":"1h"},"action":{"type":"rotate_topic"}}`, "", 0, 0, false},
		{"bad id", `{"id":"Bad Id","trigger":{"every":"1h"},"targets":"topics","action":{"type":"rotate_topic"}}`, "", 0, 0, false},
		{"catch_up on event", `{"id":"bad9","trigger":{"event":"true","catch_up":"once"},"action":{"type":"rotate_topic"}}`, "", 0, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.CreateRule(ctx, operator, mustSpec(t, tc.spec))
			if !errors.Is(err, ErrInvalidRule) {
				t.Fatalf("err = %v, want ErrInvalidRule", err)
			}
			var ce *CompileError
			if errors.As(err, &ce) != tc.wantCompileError {
				t.Fatalf("CompileError %v, want %v: %v", ce != nil, tc.wantCompileError, err)
			}
			if ce != nil {
				if ce.Field != tc.field || ce.Line != tc.line || (tc.column != 0 && ce.Column != tc.column) {
					t.Fatalf("position %s %d:%d, want %s %d:%d (%v)", ce.Field, ce.Line, ce.Column, tc.field, tc.line, tc.column, err)
				}
			}
			id := mustSpec(t, tc.spec).ID
			if ruleIDPattern.MatchString(id) {
				if _, err := e.GetRule(ctx, id); !errors.Is(err, ErrUnknownRule) {
					t.Fatalf("rule recorded despite the error: %v", err)
				}
			}
		})
	}
	if w.lastPos() != 0 {
		t.Fatalf("log holds %d records", w.lastPos())
	}
}

// The node budget refuses huge expressions at compile time; the memory
// budget stops a run that builds large values.
func TestBudgets(t *testing.T) {
	w := newWorld(t, core.SymKey)
	e, err := New(Config{Store: w.store, Service: w.svc, MaxNodes: 50, MemoryBudget: 1000, TickInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	big := "event.position" + strings.Repeat(" + 1", 60) + " > 0"
	_, err = e.CreateRule(context.Background(), operator, Spec{ID: "big", Trigger: Trigger{Event: big}, Action: Action{Type: ActionRotateTopic}})
	var ce *CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("node budget: %v", err)
	}
	c, err := compileSpec(Spec{ID: "mem", Trigger: Trigger{Event: "len(map(1..100000, # * 2)) > 0"}, Action: Action{Type: ActionRotateTopic}}, core.SymKey, 100)
	if err != nil {
		t.Fatal(err)
	}
	e.loopVM.MemoryBudget = 1000
	if _, err := e.evalCond(context.Background(), &e.loopVM, c, &Env{}); !errors.Is(err, ErrEvaluation) || !strings.Contains(err.Error(), "memory budget") {
		t.Fatalf("memory budget: %v", err)
	}
}

// Event trigger: rotate a sensors/ topic when a member leaves it. The
// rotation is an ordinary operation with the rule as actor and the unlink
// event as causation.
func TestEventTriggerRotateOnLeave(t *testing.T) {
	w := newWorld(t, core.SymKey)
	for _, c := range []string{"a", "b", "c"} {
		w.addClient(c)
	}
	w.addTopic("sensors/temp", "a", "b")
	w.addTopic("other/x", "a", "c")
	e := w.engine(nil, "a")
	run(t, e)
	ctx := context.Background()
	r, err := e.CreateRule(ctx, operator, mustSpec(t, `{"id":"rotate-on-leave",
		"trigger":{"event":"event.type == \"topic.client_unlinked.v1\" && hasPrefix(event.topic, \"sensors/\")"},
		"action":{"type":"rotate_topic"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != StatusActive || r.Fires != 0 || r.CreatedBy != "cli:test" {
		t.Fatalf("created %+v", r)
	}
	w.settle(e)
	v0, vo := w.topicVersion("sensors/temp"), w.topicVersion("other/x")

	_, err = w.svc.RemoveTopicClient(ctx, operator, c2.ByName("c"), "other/x")
	if err != nil {
		t.Fatal(err)
	}
	w.settle(e)
	if got := w.topicVersion("other/x"); got != vo {
		t.Fatalf("other/x rotated (v%d -> v%d)", vo, got)
	}
	res, err := w.svc.RemoveTopicClient(ctx, operator, c2.ByName("b"), "sensors/temp")
	if err != nil {
		t.Fatal(err)
	}
	w.settle(e)
	if got := w.topicVersion("sensors/temp"); got <= v0 {
		t.Fatalf("sensors/temp not rotated (v%d)", got)
	}
	fired := w.ruleEvents("rotate-on-leave", TypeRuleFired)
	if len(fired) != 1 {
		t.Fatalf("%d fires, want 1", len(fired))
	}
	cause := w.eventOfType(res, "topic.client_unlinked.v1")
	if fired[0].Meta.CausationID != cause || fired[0].Meta.Actor != "rule:rotate-on-leave" {
		t.Fatalf("fired meta %+v, cause want %s", fired[0].Meta, cause)
	}
	acts := w.byActor("rule:rotate-on-leave")
	if len(acts) == 0 {
		t.Fatal("no event by the rule in the audit")
	}
	for _, a := range acts {
		if IsRuleEvent(a.Type) {
			continue
		}
		if a.CausationID != cause || a.CorrelationID != fired[0].ID {
			t.Fatalf("action event %s: causation %s correlation %s", a.Type, a.CausationID, a.CorrelationID)
		}
	}
	if cs := w.completions("rotate-on-leave"); len(cs) != 1 || cs[0].Outcome != OutcomeSucceeded || cs[0].Results[0].Op != "new_topic" {
		t.Fatalf("completions %+v", cs)
	}
	got, err := e.GetRule(ctx, "rotate-on-leave")
	if err != nil || got.Fires != 1 || got.LastOutcome != OutcomeSucceeded {
		t.Fatalf("rule %+v %v", got, err)
	}
}

// Schedule trigger (every): nothing fires on creation, then once per
// period, on the topics the targets expression selects.
func TestScheduleEvery(t *testing.T) {
	w := newWorld(t, core.SymKey)
	w.addClient("a")
	w.addTopic("sensors/1", "a")
	w.addTopic("sensors/2", "a")
	w.addTopic("actuators/1", "a")
	e := w.engine(nil, "a")
	run(t, e)
	ctx := context.Background()
	if _, err := e.CreateRule(ctx, operator, mustSpec(t, `{"id":"periodic",
		"trigger":{"every":"1h"},
		"targets":"topics | filter(hasPrefix(.name, \"sensors/\"))",
		"action":{"type":"rotate_topic"}}`)); err != nil {
		t.Fatal(err)
	}
	vs := map[string]uint64{}
	for _, n := range []string{"sensors/1", "sensors/2", "actuators/1"} {
		vs[n] = w.topicVersion(n)
	}
	tick := func() {
		t.Helper()
		if err := e.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tick()
	w.clock.Add(59 * time.Minute)
	tick()
	if n := len(w.ruleEvents("periodic", TypeRuleFired)); n != 0 {
		t.Fatalf("%d fires before the first period", n)
	}
	w.clock.Add(time.Minute)
	tick()
	tick()
	if n := len(w.ruleEvents("periodic", TypeRuleFired)); n != 1 {
		t.Fatalf("%d fires after one period, want 1", n)
	}
	w.clock.Add(time.Hour)
	tick()
	if n := len(w.ruleEvents("periodic", TypeRuleFired)); n != 2 {
		t.Fatalf("%d fires after two periods, want 2", n)
	}
	for n, v := range vs {
		got := w.topicVersion(n)
		if strings.HasPrefix(n, "sensors/") != (got > v) {
			t.Fatalf("%s: v%d -> v%d", n, v, got)
		}
	}
	r, _ := e.GetRule(ctx, "periodic")
	if want := t0.Add(3 * time.Hour); !r.NextFire.Equal(want) {
		t.Fatalf("next fire %v, want %v", r.NextFire, want)
	}
	fired := w.ruleEvents("periodic", TypeRuleFired)
	if !strings.HasPrefix(fired[0].Meta.CausationID, "tick:periodic:") {
		t.Fatalf("tick causation %q", fired[0].Meta.CausationID)
	}
}

// Cron trigger with both catch-up policies after downtime, and
// fire_on_create.
func TestCronCatchUpAndFireOnCreate(t *testing.T) {
	w := newWorld(t, core.SymKey)
	w.addClient("a")
	w.addTopic("sensors/1", "a")
	e := w.engine(nil, "a")
	ctx := context.Background()
	w.clock.Set(time.Date(2026, 1, 5, 2, 0, 0, 0, time.UTC))
	for _, js := range []string{
		`{"id":"skip","trigger":{"cron":"0 3 * * *"},"targets":"topics","action":{"type":"rotate_topic"}}`,
		`{"id":"once","trigger":{"cron":"0 3 * * *","catch_up":"once"},"targets":"topics","action":{"type":"rotate_topic"}}`,
		`{"id":"oncreate","trigger":{"cron":"0 3 * * *","fire_on_create":true},"targets":"[\"sensors/1\"]","action":{"type":"rotate_topic"}}`,
	} {
		if _, err := e.CreateRule(ctx, operator, mustSpec(t, js)); err != nil {
			t.Fatal(err)
		}
	}
	count := func(id string) int { return len(w.ruleEvents(id, TypeRuleFired)) }
	if count("skip") != 0 || count("once") != 0 || count("oncreate") != 1 {
		t.Fatalf("on creation: skip %d once %d oncreate %d", count("skip"), count("once"), count("oncreate"))
	}
	if f := w.ruleEvents("oncreate", TypeRuleFired)[0]; !strings.Contains(string(f.Data), `"trigger":"create"`) {
		t.Fatalf("fire on create: %s", f.Data)
	}
	w.clock.Set(time.Date(2026, 1, 5, 2, 59, 0, 0, time.UTC))
	_ = e.Tick(ctx)
	if count("skip") != 0 {
		t.Fatal("fired before 03:00")
	}
	w.clock.Set(time.Date(2026, 1, 5, 3, 0, 20, 0, time.UTC))
	_ = e.Tick(ctx)
	if count("skip") != 1 || count("once") != 1 || count("oncreate") != 2 {
		t.Fatalf("at 03:00: skip %d once %d oncreate %d", count("skip"), count("once"), count("oncreate"))
	}
	// Down from 03:01 until 10:00 two days later: two 03:00 ticks missed.
	w.clock.Set(time.Date(2026, 1, 7, 10, 0, 0, 0, time.UTC))
	_ = e.Tick(ctx)
	_ = e.Tick(ctx)
	if count("skip") != 1 {
		t.Fatalf("skip policy fired after downtime: %d", count("skip"))
	}
	if count("once") != 2 {
		t.Fatalf("once policy: %d fires, want 2", count("once"))
	}
	// Both are back on schedule the next day.
	w.clock.Set(time.Date(2026, 1, 8, 3, 0, 0, 0, time.UTC))
	_ = e.Tick(ctx)
	if count("skip") != 2 || count("once") != 3 {
		t.Fatalf("next day: skip %d once %d", count("skip"), count("once"))
	}
}

// Combined trigger: an event trigger firing at most every 10 minutes.
func TestCombinedMinInterval(t *testing.T) {
	w := newWorld(t, core.SymKey)
	for _, c := range []string{"a", "b", "c", "d"} {
		w.addClient(c)
	}
	w.addTopic("sensors/1")
	e := w.engine(nil, "a")
	run(t, e)
	ctx := context.Background()
	if _, err := e.CreateRule(ctx, operator, mustSpec(t, `{"id":"debounced",
		"trigger":{"event":"event.type == \"topic.client_linked.v1\"","min_interval":"10m"},
		"action":{"type":"rotate_topic"}}`)); err != nil {
		t.Fatal(err)
	}
	link := func(c string) {
		t.Helper()
		if _, err := w.svc.NewTopicClient(ctx, operator, c2.ByName(c), "sensors/1"); err != nil {
			t.Fatal(err)
		}
		w.settle(e)
	}
	link("a")
	link("b")
	w.clock.Add(9 * time.Minute)
	link("c")
	if n := len(w.ruleEvents("debounced", TypeRuleFired)); n != 1 {
		t.Fatalf("%d fires within 10 minutes, want 1", n)
	}
	w.clock.Add(time.Minute)
	link("d")
	if n := len(w.ruleEvents("debounced", TypeRuleFired)); n != 2 {
		t.Fatalf("%d fires, want 2", n)
	}
}

// Loop guard (depth): a rule that rotates a topic whenever a topic is
// rotated reacts to its own effects; it is stopped past the depth limit,
// with the reason on record.
func TestLoopGuardDepth(t *testing.T) {
	w := newWorld(t, core.SymKey)
	w.addClient("a")
	w.addTopic("sensors/1", "a")
	e := w.engine(nil, "a")
	run(t, e)
	ctx := context.Background()
	if _, err := e.CreateRule(ctx, operator, mustSpec(t, `{"id":"looper",
		"trigger":{"event":"event.type == \"topic.key_rotated.v1\""},
		"action":{"type":"rotate_topic"}, "rate_limit":{"max":100,"per":"1m"}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.RotateTopic(ctx, operator, "sensors/1"); err != nil {
		t.Fatal(err)
	}
	w.settle(e)
	if n := len(w.ruleEvents("looper", TypeRuleFired)); n != e.cfg.MaxDepth {
		t.Fatalf("%d fires, want %d", n, e.cfg.MaxDepth)
	}
	stops := w.ruleEvents("looper", TypeRuleStopped)
	if len(stops) != 1 {
		t.Fatalf("%d stops", len(stops))
	}
	var p reasonEvent
	_ = json.Unmarshal(stops[0].Data, &p)
	if p.Kind != "depth" || !strings.Contains(p.Reason, "own effects") {
		t.Fatalf("stop %+v", p)
	}
	r, _ := e.GetRule(ctx, "looper")
	if r.Status != StatusStopped || r.Reason != p.Reason {
		t.Fatalf("rule %+v", r)
	}
	// Depths recorded: 1, 2, 3.
	for i, f := range w.ruleEvents("looper", TypeRuleFired) {
		var fe firedEvent
		_ = json.Unmarshal(f.Data, &fe)
		if fe.Depth != i+1 {
			t.Fatalf("fire %d depth %d", i, fe.Depth)
		}
	}
	// An operator resumes it: it acts again on the next operator event.
	if _, err := e.ResumeRule(ctx, operator, "looper"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.RotateTopic(ctx, operator, "sensors/1"); err != nil {
		t.Fatal(err)
	}
	w.settle(e)
	if n := len(w.ruleEvents("looper", TypeRuleFired)); n != 2*e.cfg.MaxDepth {
		t.Fatalf("after resume: %d fires", n)
	}
}

// Loop guard (rate): past its rate limit a rule stops.
func TestLoopGuardRate(t *testing.T) {
	w := newWorld(t, core.SymKey)
	for _, c := range []string{"a", "b", "c", "d"} {
		w.addClient(c)
	}
	w.addTopic("t")
	e := w.engine(nil, "a")
	run(t, e)
	ctx := context.Background()
	if _, err := e.CreateRule(ctx, operator, mustSpec(t, `{"id":"ratey",
		"trigger":{"event":"event.type == \"topic.client_linked.v1\""},
		"action":{"type":"rotate_topic"}, "rate_limit":{"max":2,"per":"1h"}}`)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"a", "b", "c", "d"} {
		if _, err := w.svc.NewTopicClient(ctx, operator, c2.ByName(c), "t"); err != nil {
			t.Fatal(err)
		}
	}
	w.settle(e)
	if n := len(w.ruleEvents("ratey", TypeRuleFired)); n != 2 {
		t.Fatalf("%d fires, want 2", n)
	}
	stops := w.ruleEvents("ratey", TypeRuleStopped)
	if len(stops) != 1 || !strings.Contains(string(stops[0].Data), `"kind":"rate"`) {
		t.Fatalf("stops %v", stops)
	}
}

// Dry run: targets and operations against the current state, nothing
// executed or recorded.
func TestDryRun(t *testing.T) {
	w := newWorld(t, core.SymKey)
	for _, c := range []string{"s1", "s2", "x"} {
		w.addClient(c)
	}
	w.addTopic("sensors/a", "s1", "s2")
	w.addTopic("sensors/b", "s1")
	w.addTopic("misc", "x")
	e := w.engine(nil, "a")
	ctx := context.Background()
	before := w.lastPos()
	p, err := e.DryRun(ctx, mustSpec(t, `{"trigger":{"cron":"0 3 * * *"},
		"targets":"topics | filter(.name matches \"^sensors/\" && .members >= 2)",
		"action":{"type":"rotate_topic"}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Targets) != 1 || p.Targets[0] != "sensors/a" || len(p.Operations) != 1 || p.Operations[0].Op != "new_topic" {
		t.Fatalf("plan %+v", p)
	}
	if want := time.Date(2026, 1, 5, 3, 0, 0, 0, time.UTC); !p.NextFire.Equal(want) {
		t.Fatalf("next fire %v", p.NextFire)
	}
	p, err = e.DryRun(ctx, mustSpec(t, `{"trigger":{"event":"event.type == \"topic.client_unlinked.v1\""},
		"targets":"clients | filter(.topics == 0 || .name == event.client)","action":{"type":"reset_client"}}`),
		&Event{Type: "topic.client_unlinked.v1", Client: "x", Topic: "misc"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Matched == nil || !*p.Matched || len(p.Operations) != 1 || p.Operations[0] != (Operation{Op: "reset_client", Client: "x"}) {
		t.Fatalf("plan %+v", p)
	}
	if w.lastPos() != before {
		t.Fatal("dry run wrote to the log")
	}
	// A dry run of an existing rule.
	if _, err := e.CreateRule(ctx, operator, mustSpec(t, `{"id":"detach","trigger":{"every":"24h"},
		"targets":"topics | filter(.name == \"sensors/a\") | map(.clients) | flatten()","action":{"type":"detach_client","topic":"\"sensors/a\""}}`)); err != nil {
		t.Fatal(err)
	}
	p, err = e.DryRunRule(ctx, "detach", nil)
	if err != nil || len(p.Operations) != 2 || p.Operations[1] != (Operation{Op: "remove_topic_client", Client: "s2", Topic: "sensors/a"}) {
		t.Fatalf("plan %+v %v", p, err)
	}
}

// Management: update, pause, resume, delete, list; a paused rule does not
// fire; every change is an event of the rule stream.
func TestManagement(t *testing.T) {
	w := newWorld(t, core.SymKey)
	w.addClient("a")
	w.addTopic("t1", "a")
	e := w.engine(nil, "a")
	run(t, e)
	ctx := context.Background()
	r, err := e.CreateRule(ctx, operator, mustSpec(t, `{"trigger":{"every":"1h"},"targets":"topics","action":{"type":"rotate_topic"}}`))
	if err != nil {
		t.Fatal(err)
	}
	id := r.ID
	if !ruleIDPattern.MatchString(id) {
		t.Fatalf("generated id %q", id)
	}
	if _, err := e.CreateRule(ctx, operator, Spec{ID: id, Trigger: Trigger{Every: Duration(time.Hour)}, Targets: "topics", Action: Action{Type: ActionRotateTopic}}); !errors.Is(err, ErrRuleExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if r, err = e.PauseRule(ctx, operator, id, "maintenance"); err != nil || r.Status != StatusPaused || r.Reason != "maintenance" {
		t.Fatalf("pause %+v %v", r, err)
	}
	w.clock.Add(2 * time.Hour)
	_ = e.Tick(ctx)
	if n := len(w.ruleEvents(id, TypeRuleFired)); n != 0 {
		t.Fatalf("paused rule fired %d times", n)
	}
	if r, err = e.ResumeRule(ctx, operator, id); err != nil || r.Status != StatusActive {
		t.Fatalf("resume %+v %v", r, err)
	}
	_ = e.Tick(ctx)
	if n := len(w.ruleEvents(id, TypeRuleFired)); n != 1 {
		t.Fatalf("resumed rule: %d fires", n)
	}
	upd := mustSpec(t, `{"trigger":{"every":"30m"},"targets":"[]","action":{"type":"rotate_topic"},"description":"v2"}`)
	if r, err = e.UpdateRule(ctx, operator, id, upd); err != nil || r.Spec.Description != "v2" || r.Spec.Trigger.Every != Duration(30*time.Minute) {
		t.Fatalf("update %+v %v", r, err)
	}
	if _, err := e.UpdateRule(ctx, operator, id, mustSpec(t, `{"trigger":{"every":"30m"},"targets":"topics | filter(","action":{"type":"rotate_topic"}}`)); !errors.Is(err, ErrInvalidRule) {
		t.Fatalf("bad update: %v", err)
	}
	list, err := e.ListRules(ctx)
	if err != nil || len(list) != 1 || list[0].ID != id {
		t.Fatalf("list %+v %v", list, err)
	}
	if err := e.DeleteRule(ctx, operator, id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.GetRule(ctx, id); !errors.Is(err, ErrUnknownRule) {
		t.Fatalf("get deleted: %v", err)
	}
	if _, err := e.PauseRule(ctx, operator, "nosuch", ""); !errors.Is(err, ErrUnknownRule) {
		t.Fatalf("pause unknown: %v", err)
	}
	w.settle(e)
	if list, _ := e.ListRules(ctx); len(list) != 0 {
		t.Fatalf("list after delete %+v", list)
	}
	// The whole life is in the log, with wire names and metadata.
	recs, _ := w.store.ReadStream(ctx, Stream(id), 1)
	var types []string
	for _, r := range recs {
		types = append(types, r.Type)
		if r.Meta.Suite != "standard" || r.Meta.Mode != "sk" || r.Meta.Actor == "" || r.Meta.CorrelationID == "" {
			t.Fatalf("metadata %+v", r.Meta)
		}
	}
	want := "rule.created.v1 rule.paused.v1 rule.resumed.v1 rule.fired.v1 rule.completed.v1 rule.updated.v1 rule.deleted.v1"
	if got := strings.Join(types, " "); got != want {
		t.Fatalf("stream %s\nwant %s", got, want)
	}
}

// Two engines (two C2 instances) on one store: each scheduled period and
// each triggering event fires exactly once; the loser of the claim gets a
// conflict and does not act.
func TestExactlyOnceTwoEngines(t *testing.T) {
	w := newWorld(t, core.SymKey)
	for _, c := range []string{"a", "b", "c"} {
		w.addClient(c)
	}
	w.addTopic("sensors/1", "a")
	w.addTopic("sensors/2", "a")
	svc2 := w.newService()
	e1, e2 := w.engine(nil, "e1"), w.engineFor(svc2, nil, "e2")
	run(t, e1)
	run(t, e2)
	ctx := context.Background()
	if _, err := e1.CreateRule(ctx, operator, mustSpec(t, `{"id":"sched","trigger":{"every":"1h"},
		"targets":"topics | filter(hasPrefix(.name, \"sensors/\"))","action":{"type":"rotate_topic"}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := e2.CreateRule(ctx, operator, mustSpec(t, `{"id":"onlink",
		"trigger":{"event":"event.type == \"topic.client_linked.v1\""},"action":{"type":"rotate_topic"},
		"rate_limit":{"max":1000,"per":"1m"}}`)); err != nil {
		t.Fatal(err)
	}
	w.settle(e1, e2)
	v1 := w.rotations("sensors/1")
	const periods = 3
	for range periods {
		w.clock.Add(time.Hour)
		var wg sync.WaitGroup
		for _, e := range []*Engine{e1, e2, e1, e2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 3 {
					if err := e.Tick(ctx); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
	}
	if n := len(w.ruleEvents("sched", TypeRuleFired)); n != periods {
		t.Fatalf("%d scheduled fires, want %d", n, periods)
	}
	w.settle(e1, e2)
	// Each fire rotated sensors/1 once; the links below add more.
	if got := w.rotations("sensors/1"); got != v1+periods {
		t.Fatalf("sensors/1 rotated %d times, want %d", got, v1+periods)
	}
	for _, c := range []string{"b", "c"} {
		if _, err := w.svc.NewTopicClient(ctx, operator, c2.ByName(c), "sensors/2"); err != nil {
			t.Fatal(err)
		}
	}
	w.settle(e1, e2)
	fired := w.ruleEvents("onlink", TypeRuleFired)
	if len(fired) != 2 {
		t.Fatalf("%d event fires with two engines, want 2", len(fired))
	}
	if fired[0].Meta.CausationID == fired[1].Meta.CausationID {
		t.Fatal("one event fired twice")
	}
	if cs := w.completions("onlink"); len(cs) != 2 {
		t.Fatalf("%d completions", len(cs))
	}
}

// Restart continuity: an engine with a file checkpoint stops; events written
// while it is down are evaluated when a new engine starts from the
// checkpoint, and nothing before the checkpoint fires again.
func TestRestartContinuity(t *testing.T) {
	w := newWorld(t, core.SymKey)
	for _, c := range []string{"a", "b", "c", "d"} {
		w.addClient(c)
	}
	w.addTopic("sensors/1", "a", "b", "c", "d")
	cp := projections.FileCheckpoints{Dir: t.TempDir()}
	e := w.engine(cp, "auto")
	stop := run(t, e)
	ctx := context.Background()
	if _, err := e.CreateRule(ctx, operator, mustSpec(t, `{"id":"leave",
		"trigger":{"event":"event.type == \"topic.client_unlinked.v1\""},"action":{"type":"rotate_topic"}}`)); err != nil {
		t.Fatal(err)
	}
	unlink := func(c string) {
		t.Helper()
		if _, err := w.svc.RemoveTopicClient(ctx, operator, c2.ByName(c), "sensors/1"); err != nil {
			t.Fatal(err)
		}
	}
	unlink("a")
	w.settle(e)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	saved, err := cp.Load("auto")
	if err != nil || saved != w.lastPos() {
		t.Fatalf("checkpoint %d (%v), log at %d", saved, err, w.lastPos())
	}
	// Down: two members leave. Then the whole C2 restarts (store reopened).
	unlink("b")
	unlink("c")
	w.close()
	w.open()
	e2 := w.engine(cp, "auto")
	run(t, e2)
	w.settle(e2)
	fired := w.ruleEvents("leave", TypeRuleFired)
	if len(fired) != 3 {
		t.Fatalf("%d fires after restart, want 3 (1 before, 2 while down)", len(fired))
	}
	// A restart from an older checkpoint re-reads events already handled:
	// the claims keyed on the cause keep them from firing twice.
	if err := cp.Save("auto", saved-3); err != nil {
		t.Fatal(err)
	}
	e3 := w.engine(cp, "auto")
	stop3 := run(t, e3)
	w.settle(e3)
	_ = stop3()
	if n := len(w.ruleEvents("leave", TypeRuleFired)); n != 3 {
		t.Fatalf("%d fires after a replay, want 3", n)
	}
	// Events before the rule existed never fire it.
	for _, f := range fired {
		if f.Meta.CausationID == "" {
			t.Fatal("fire without cause")
		}
	}
	_ = domain.ErrUnknownTopic
	_ = eventstore.Any
}

// Run's own ticker fires schedules (no manual Tick).
func TestRunTicker(t *testing.T) {
	w := newWorld(t, core.SymKey)
	w.addClient("a")
	w.addTopic("sensors/1", "a")
	e, err := New(Config{Store: w.store, Service: w.svc, Clock: w.clock.Now, TickInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	run(t, e)
	ctx := context.Background()
	if _, err := e.CreateRule(ctx, operator, mustSpec(t, `{"id":"ticked","trigger":{"every":"10m"},"targets":"[\"sensors/1\"]","action":{"type":"rotate_topic"}}`)); err != nil {
		t.Fatal(err)
	}
	w.settle(e) // the first Run is processing the log
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := e.Run(tctx); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second Run: %v", err)
	}
	// Two whole ticks after the rule exists: at least one started after it
	// was created and saw it, not yet due.
	waitTicks(t, e, 2)
	if n := len(w.ruleEvents("ticked", TypeRuleFired)); n != 0 {
		t.Fatalf("%d fires before the period", n)
	}
	w.clock.Add(10 * time.Minute)
	testwait.For(t, "the ticker to fire the rule", func() bool { return len(w.ruleEvents("ticked", TypeRuleFired)) != 0 })
	// Two whole ticks after the fire was recorded: at least one saw it and
	// must not fire again in the same period.
	waitTicks(t, e, 2)
	if n := len(w.ruleEvents("ticked", TypeRuleFired)); n != 1 {
		t.Fatalf("%d fires in one period", n)
	}
}

// waitTicks waits until Run's ticker has completed n more ticks.
func waitTicks(t *testing.T, e *Engine, n uint64) {
	t.Helper()
	target := e.ticks.Load() + n
	testwait.For(t, fmt.Sprintf("%d more schedule ticks", n), func() bool { return e.ticks.Load() >= target })
}

// A chain through two rules accumulates depth: an operator's link (depth 0)
// fires A (depth 1), whose rotation fires B (depth 2); with MaxDepth 1, B is
// stopped instead.
func TestDepthAcrossRules(t *testing.T) {
	for _, maxDepth := range []int{1, 3} {
		t.Run(fmt.Sprint("max", maxDepth), func(t *testing.T) {
			w := newWorld(t, core.SymKey)
			w.addClient("a")
			w.addClient("b")
			w.addTopic("sensors/1", "a")
			e, err := New(Config{Store: w.store, Service: w.svc, Clock: w.clock.Now, TickInterval: -1, MaxDepth: maxDepth, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			run(t, e)
			ctx := context.Background()
			for _, js := range []string{
				`{"id":"a-rotate-on-link","trigger":{"event":"event.type == \"topic.client_linked.v1\""},"action":{"type":"rotate_topic"}}`,
				`{"id":"b-reset-on-rotate","trigger":{"event":"event.type == \"topic.key_rotated.v1\" && event.depth > 0"},"targets":"[\"b\"]","action":{"type":"reset_client"}}`,
			} {
				if _, err := e.CreateRule(ctx, operator, mustSpec(t, js)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := w.svc.NewTopicClient(ctx, operator, c2.ByName("b"), "sensors/1"); err != nil {
				t.Fatal(err)
			}
			w.settle(e)
			if n := len(w.ruleEvents("a-rotate-on-link", TypeRuleFired)); n != 1 {
				t.Fatalf("A fired %d times", n)
			}
			bFired := len(w.ruleEvents("b-reset-on-rotate", TypeRuleFired))
			bStopped := len(w.ruleEvents("b-reset-on-rotate", TypeRuleStopped))
			if maxDepth == 1 && (bFired != 0 || bStopped != 1) {
				t.Fatalf("B fired %d stopped %d, want 0/1", bFired, bStopped)
			}
			if maxDepth == 3 {
				if bFired != 1 || bStopped != 0 {
					t.Fatalf("B fired %d stopped %d, want 1/0", bFired, bStopped)
				}
				var fe firedEvent
				_ = json.Unmarshal(w.ruleEvents("b-reset-on-rotate", TypeRuleFired)[0].Data, &fe)
				if fe.Depth != 2 {
					t.Fatalf("B depth %d, want 2", fe.Depth)
				}
				if ci, err := w.svc.Client(c2.ByName("b")); err != nil || ci.Topics != 0 {
					t.Fatalf("b not reset: %+v %v", ci, err)
				}
			}
		})
	}
}

// An engine that never runs (the CLI) lists the rules another wrote.
func TestListRulesWithoutRun(t *testing.T) {
	w := newWorld(t, core.SymKey)
	ctx := context.Background()
	e1 := w.engine(nil, "e1")
	for _, id := range []string{"r1", "r2", "r3"} {
		if _, err := e1.CreateRule(ctx, operator, Spec{ID: id, Trigger: Trigger{Every: Duration(time.Hour)}, Targets: "topics", Action: Action{Type: ActionRotateTopic}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e1.DeleteRule(ctx, operator, "r2"); err != nil {
		t.Fatal(err)
	}
	e2 := w.engine(nil, "cli")
	list, err := e2.ListRules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "r1" || list[1].ID != "r3" {
		t.Fatalf("list %+v", list)
	}
}
