package http

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/e4c2/e4c2/automation"
	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/c2test"
	"github.com/e4c2/e4c2/internal/testwait"
	"github.com/e4c2/e4c2/suites/core"
)

// ruleEnv is the API over the real service and the real automation engine
// on one in-memory store.
type ruleEnv struct {
	*harness
	store eventstore.Store
	svc   *c2.Service
	eng   *automation.Engine
}

func newRuleEnv(t *testing.T, opts ...func(*automation.Config)) *ruleEnv {
	t.Helper()
	svc, store := c2test.Service(t, core.SymKey)
	cfg := automation.Config{Store: store, Service: svc, TickInterval: -1}
	for _, o := range opts {
		o(&cfg)
	}
	eng, err := automation.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessWith(t, Config{Rules: NewEngineRules(eng)}, NewServiceBackend(svc))
	h.issueTokens(t, svc)
	return &ruleEnv{harness: h, store: store, svc: svc, eng: eng}
}

// last returns the position of the last event in the log.
func (e *ruleEnv) last(t *testing.T) uint64 {
	t.Helper()
	var pos uint64
	for from := uint64(1); ; {
		recs, err := e.store.ReadAll(context.Background(), from, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return pos
		}
		pos = recs[len(recs)-1].Position
		from = pos + 1
	}
}

// since returns the events after pos.
func (e *ruleEnv) since(t *testing.T, pos uint64) []eventstore.Record {
	t.Helper()
	recs, err := e.store.ReadAll(context.Background(), pos+1, 10000)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

const sensorsRule = `{
  "id": "rotate-sensors",
  "description": "rotate a sensors/ topic when a client joins it",
  "trigger": {"event": "event.type == \"topic.client_linked.v1\" && hasPrefix(event.topic, \"sensors/\")"},
  "action": {"type": "rotate_topic"}
}`

func TestRulesLifecycle(t *testing.T) {
	e := newRuleEnv(t)
	ctx := context.Background()
	o := c2.Origin{Actor: "test"}
	for _, topic := range []string{"sensors/a", "sensors/b", "alerts"} {
		if _, err := e.svc.NewTopic(ctx, o, topic); err != nil {
			t.Fatal(err)
		}
	}

	// Create: 201, attributed to the token, correlated with the request.
	rec := e.do(post, "/api/v1/rules", e.oper, sensorsRule, HeaderRequestID, "req-rule-1")
	e.expect(rec, 201, "")
	r := decode[automation.Rule](t, rec)
	if r.ID != "rotate-sensors" || r.Status != automation.StatusActive || r.CreatedBy != "token:ops" || r.Spec.Action.Type != automation.ActionRotateTopic {
		t.Fatalf("created rule %+v", r)
	}
	recs, err := e.store.ReadStream(ctx, automation.Stream("rotate-sensors"), 1)
	if err != nil || len(recs) != 1 || recs[0].Type != automation.TypeRuleCreated {
		t.Fatalf("rule stream %v %v", recs, err)
	}
	if m := recs[0].Meta; m.Actor != "token:ops" || m.CorrelationID != "req-rule-1" {
		t.Fatalf("rule.created metadata %+v", m)
	}

	// The same id again: 409.
	e.expect(e.do(post, "/api/v1/rules", e.admin, sensorsRule), 409, "rule_exists")

	// List and get (reader).
	rec = e.do(get, "/api/v1/rules", e.reader, nil)
	e.expect(rec, 200, "")
	list := decode[struct{ Items []automation.Rule }](t, rec)
	if len(list.Items) != 1 || list.Items[0].ID != "rotate-sensors" {
		t.Fatalf("list %+v", list)
	}
	rec = e.do(get, "/api/v1/rules/rotate-sensors", e.reader, nil)
	e.expect(rec, 200, "")
	if g := decode[automation.Rule](t, rec); g.ID != r.ID || g.Spec.Trigger.Event != r.Spec.Trigger.Event {
		t.Fatalf("get %+v", g)
	}

	// Pause with a reason, pause again (idempotent), resume.
	rec = e.do(post, "/api/v1/rules/rotate-sensors/pause", e.oper, `{"reason":"maintenance window"}`)
	e.expect(rec, 200, "")
	if p := decode[automation.Rule](t, rec); p.Status != automation.StatusPaused || p.Reason != "maintenance window" {
		t.Fatalf("paused %+v", p)
	}
	e.expect(e.do(post, "/api/v1/rules/rotate-sensors/pause", e.oper, nil), 200, "")
	rec = e.do(post, "/api/v1/rules/rotate-sensors/resume", e.oper, nil)
	e.expect(rec, 200, "")
	if p := decode[automation.Rule](t, rec); p.Status != automation.StatusActive {
		t.Fatalf("resumed %+v", p)
	}

	// Update: the spec changes, the status stays.
	upd := strings.Replace(sensorsRule, `hasPrefix(event.topic, \"sensors/\")`, `event.topic == \"alerts\"`, 1)
	rec = e.do(put, "/api/v1/rules/rotate-sensors", e.oper, upd)
	e.expect(rec, 200, "")
	if u := decode[automation.Rule](t, rec); !strings.Contains(u.Spec.Trigger.Event, `== "alerts"`) || u.Status != automation.StatusActive {
		t.Fatalf("updated %+v", u)
	}
	e.expect(e.do(put, "/api/v1/rules/rotate-sensors", e.oper, sensorsRule), 200, "")

	// Delete: 204, then 404 everywhere; the id is not reusable.
	e.expect(e.do(del, "/api/v1/rules/rotate-sensors", e.oper, nil), 204, "")
	e.expect(e.do(get, "/api/v1/rules/rotate-sensors", e.reader, nil), 404, "unknown_rule")
	e.expect(e.do(post, "/api/v1/rules/rotate-sensors/pause", e.oper, nil), 404, "unknown_rule")
	e.expect(e.do(del, "/api/v1/rules/rotate-sensors", e.oper, nil), 404, "unknown_rule")
	e.expect(e.do(post, "/api/v1/rules", e.oper, sensorsRule), 409, "rule_exists")
	rec = e.do(get, "/api/v1/rules", e.reader, nil)
	e.expect(rec, 200, "")
	if l := decode[struct{ Items []automation.Rule }](t, rec); len(l.Items) != 0 {
		t.Fatalf("list after delete %+v", l)
	}
	// An id that cannot exist.
	e.expect(e.do(get, "/api/v1/rules/No%20Such", e.reader, nil), 404, "unknown_rule")
}

func TestRulesInvalid(t *testing.T) {
	e := newRuleEnv(t)
	before := e.last(t)

	// A compile error: 400 with the field and position in the details.
	bad := `{"id":"bad","trigger":{"event":"event.type ==\n  nosuch(1)"},"action":{"type":"rotate_topic"}}`
	rec := e.do(post, "/api/v1/rules", e.oper, bad)
	e.expect(rec, 400, "invalid_expression")
	body := decode[struct {
		Error struct {
			Details struct {
				Field  string `json:"field"`
				Line   int    `json:"line"`
				Column int    `json:"column"`
			} `json:"details"`
		} `json:"error"`
	}](t, rec)
	if d := body.Error.Details; d.Field != "trigger.event" || d.Line != 2 || d.Column < 1 {
		t.Fatalf("compile error details %+v (%s)", d, rec.Body.String())
	}

	// Refused specs without a position: 400 invalid_rule.
	for _, spec := range []string{
		`{"id":"x1","trigger":{"every":"1h"},"targets":"topics","action":{"type":"explode"}}`,
		`{"id":"x2","trigger":{"every":"1h","cron":"@daily"},"targets":"topics","action":{"type":"rotate_topic"}}`,
		`{"id":"Bad Id","trigger":{"every":"1h"},"targets":"topics","action":{"type":"rotate_topic"}}`,
		`{"id":"x3","trigger":{"every":"1h"},"targets":"topics","action":{"type":"share_pubkeys"}}`, // PK only
	} {
		rec := e.do(post, "/api/v1/rules", e.oper, spec)
		if rec.Code != 400 {
			t.Fatalf("%s: status %d %s", spec, rec.Code, rec.Body.String())
		}
	}
	// Unknown JSON fields are refused like everywhere in the API.
	e.expect(e.do(post, "/api/v1/rules", e.oper, `{"id":"x4","trigger":{"every":"1h"},"action":{"type":"rotate_topic"},"bogus":1}`), 400, "invalid_json")
	// Compile errors also stop an update and a dry run.
	e.expect(e.do(post, "/api/v1/rules/dry-run", e.reader, `{"spec":{"trigger":{"event":"1 +"},"action":{"type":"rotate_topic"}}}`), 400, "invalid_expression")
	e.expect(e.do(post, "/api/v1/rules/dry-run", e.reader, `{}`), 400, "invalid_rule")

	if after := e.last(t); after != before {
		t.Fatalf("refused rules wrote %d events", after-before)
	}
}

func TestRulesRoles(t *testing.T) {
	e := newRuleEnv(t)
	e.expect(e.do(post, "/api/v1/rules", e.reader, sensorsRule), 403, "forbidden")
	e.expect(e.do(post, "/api/v1/rules", e.oper, sensorsRule), 201, "")
	for _, tc := range []struct{ method, path, body string }{
		{put, "/api/v1/rules/rotate-sensors", sensorsRule},
		{post, "/api/v1/rules/rotate-sensors/pause", ""},
		{post, "/api/v1/rules/rotate-sensors/resume", ""},
		{del, "/api/v1/rules/rotate-sensors", ""},
	} {
		var b any
		if tc.body != "" {
			b = tc.body
		}
		e.expect(e.do(tc.method, tc.path, e.reader, b), 403, "forbidden")
	}
	e.expect(e.do(get, "/api/v1/rules", "", nil), 401, "missing_token")
	// Dry runs only read: a reader may run them.
	e.expect(e.do(post, "/api/v1/rules/rotate-sensors/dry-run", e.reader, nil), 200, "")
	e.expect(e.do(post, "/api/v1/rules/dry-run", e.reader, `{"spec":`+sensorsRule+`}`), 200, "")
	// The rule is still there and active after the refused calls.
	rec := e.do(get, "/api/v1/rules/rotate-sensors", e.admin, nil)
	e.expect(rec, 200, "")
	if r := decode[automation.Rule](t, rec); r.Status != automation.StatusActive {
		t.Fatalf("rule after refused calls %+v", r)
	}
}

func TestRulesDryRun(t *testing.T) {
	e := newRuleEnv(t)
	ctx := context.Background()
	o := c2.Origin{Actor: "test"}
	for _, topic := range []string{"sensors/a", "sensors/b", "alerts"} {
		if _, err := e.svc.NewTopic(ctx, o, topic); err != nil {
			t.Fatal(err)
		}
	}
	key := bytes.Repeat([]byte{7}, 32)
	if _, err := e.svc.NewClient(ctx, o, c2.ByName("dev1"), key, domain.RoleBoth); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.NewTopicClient(ctx, o, c2.ByName("dev1"), "sensors/a"); err != nil {
		t.Fatal(err)
	}
	e.expect(e.do(post, "/api/v1/rules", e.oper, sensorsRule), 201, "")
	before := e.last(t)

	type plan struct {
		Rule       string
		Trigger    string
		Matched    *bool
		Targets    []string
		Operations []automation.Operation
	}
	// An existing event rule on a matching sample event.
	rec := e.do(post, "/api/v1/rules/rotate-sensors/dry-run", e.reader,
		`{"event":{"type":"topic.client_linked.v1","topic":"sensors/a","client":"dev1"}}`)
	e.expect(rec, 200, "")
	p := decode[plan](t, rec)
	if p.Rule != "rotate-sensors" || p.Trigger != automation.FiredByEvent || p.Matched == nil || !*p.Matched ||
		len(p.Targets) != 1 || p.Targets[0] != "sensors/a" ||
		len(p.Operations) != 1 || p.Operations[0].Op != "new_topic" || p.Operations[0].Topic != "sensors/a" {
		t.Fatalf("dry run %+v (%s)", p, rec.Body.String())
	}
	// A non-matching sample.
	rec = e.do(post, "/api/v1/rules/rotate-sensors/dry-run", e.reader,
		`{"event":{"type":"topic.client_linked.v1","topic":"alerts"}}`)
	e.expect(rec, 200, "")
	if p := decode[plan](t, rec); p.Matched == nil || *p.Matched {
		t.Fatalf("non-matching dry run %+v", p)
	}
	// A spec not created: a schedule over every sensors/ topic.
	rec = e.do(post, "/api/v1/rules/dry-run", e.oper, `{"spec":{"trigger":{"every":"24h"},
		"targets":"topics | filter(hasPrefix(.name, \"sensors/\"))","action":{"type":"rotate_topic"}}}`)
	e.expect(rec, 200, "")
	p = decode[plan](t, rec)
	if p.Trigger != automation.FiredBySchedule || strings.Join(p.Targets, ",") != "sensors/a,sensors/b" || len(p.Operations) != 2 {
		t.Fatalf("schedule dry run %+v (%s)", p, rec.Body.String())
	}
	e.expect(e.do(post, "/api/v1/rules/nosuch/dry-run", e.reader, nil), 404, "unknown_rule")

	// Nothing was executed or recorded: no command.queued, no event at all.
	if recs := e.since(t, before); len(recs) != 0 {
		t.Fatalf("dry runs appended %d events, first %s", len(recs), recs[0].Type)
	}
}

// TestRulesFireThroughAPI: a rule created through the API reacts to an
// operation made through the API, and its effects carry the rule as actor.
func TestRulesFireThroughAPI(t *testing.T) {
	e := newRuleEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.eng.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	// Without a checkpoint the engine starts at the end of the log as it
	// finds it: let it get there before acting, or it may start after the
	// link below and rightly never see it.
	if err := e.eng.WaitPosition(ctx, e.last(t)); err != nil {
		t.Fatal(err)
	}

	o := c2.Origin{Actor: "test"}
	if _, err := e.svc.NewTopic(ctx, o, "sensors/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.NewClient(ctx, o, c2.ByName("dev1"), bytes.Repeat([]byte{9}, 32), domain.RoleBoth); err != nil {
		t.Fatal(err)
	}
	e.expect(e.do(post, "/api/v1/rules", e.oper, sensorsRule), 201, "")
	e.expect(e.do(put, "/api/v1/clients/dev1/topics/sensors%2Fa", e.oper, nil), 204, "")
	if err := e.eng.WaitPosition(ctx, e.last(t)); err != nil {
		t.Fatal(err)
	}
	// The engine has seen the link; its fire, rotation and completion are
	// appended after that, asynchronously.
	var fired, completed, rotated bool
	testwait.For(t, "the rule's fire, rotation and completion", func() bool {
		fired, completed, rotated = false, false, false
		for _, r := range e.since(t, 0) {
			switch {
			case r.Type == automation.TypeRuleFired && r.Meta.Actor == "rule:rotate-sensors":
				fired = true
			case r.Type == automation.TypeRuleCompleted && r.Meta.Actor == "rule:rotate-sensors":
				completed = true
			case r.Type == "topic.key_rotated.v1" && r.Meta.Actor == "rule:rotate-sensors":
				rotated = true
			}
		}
		return fired && completed && rotated
	})
	rec := e.do(get, "/api/v1/rules/rotate-sensors", e.reader, nil)
	e.expect(rec, 200, "")
	if r := decode[automation.Rule](t, rec); r.Fires != 1 || r.LastOutcome != automation.OutcomeSucceeded {
		t.Fatalf("rule after fire %+v", r)
	}
}

// TestRulesWithoutEngine: a server without engine documents the routes and
// answers 501, never 404 (which means "no such rule").
func TestRulesWithoutEngine(t *testing.T) {
	h := newHarness(t, Config{})
	for _, tc := range []struct{ method, path, token string }{
		{get, "/api/v1/rules", h.reader},
		{get, "/api/v1/rules/some-rule", h.reader},
		{post, "/api/v1/rules/some-rule/resume", h.oper},
		{del, "/api/v1/rules/some-rule", h.oper},
	} {
		h.expect(h.do(tc.method, tc.path, tc.token, nil), 501, "rules_unavailable")
	}
	// Roles are still checked first.
	h.expect(h.do(del, "/api/v1/rules/some-rule", h.reader, nil), 403, "forbidden")
}

// TestRuleErrorTable: the rule sentinels map to their codes.
func TestRuleErrorTable(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{automation.ErrUnknownRule, 404, "unknown_rule"},
		{automation.ErrRuleExists, 409, "rule_exists"},
		{automation.ErrInvalidRule, 400, "invalid_rule"},
		{&automation.CompileError{Field: "targets", Line: 1, Column: 3, Message: "x"}, 400, "invalid_expression"},
		{automation.ErrInvalidEvent, 500, "internal"},
	} {
		st, code, _ := classify(tc.err)
		if st != tc.status || code != tc.code {
			t.Errorf("%v: %d %s, want %d %s", tc.err, st, code, tc.status, tc.code)
		}
	}
}
