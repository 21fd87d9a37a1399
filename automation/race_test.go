package automation

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/suites/core"
)

// hookStore runs a hook before the first append of a given event type and
// records the append errors.
type hookStore struct {
	eventstore.Store
	typ  string
	hook func()
	once sync.Once
	mu   sync.Mutex
	errs []error
}

func (h *hookStore) Append(ctx context.Context, stream string, expected int64, evs ...eventstore.EventData) (uint64, error) {
	if len(evs) > 0 && evs[0].Type == h.typ {
		h.once.Do(h.hook)
	}
	v, err := h.Store.Append(ctx, stream, expected, evs...)
	h.mu.Lock()
	h.errs = append(h.errs, err)
	h.mu.Unlock()
	return v, err
}

// The claim race, made deterministic: engine 2 has read the rule stream and
// is about to claim the period when engine 1 claims and acts first. Engine
// 2's append fails with ErrConflict, it re-reads, sees the fire and does
// not act.
func TestClaimLoserDoesNotAct(t *testing.T) {
	w := newWorld(t, core.SymKey)
	w.addClient("a")
	w.addTopic("sensors/1", "a")
	ctx := context.Background()
	e1 := w.engine(nil, "e1")
	hs := &hookStore{Store: w.store, typ: TypeRuleFired}
	hs.hook = func() {
		if err := e1.Tick(ctx); err != nil {
			t.Error(err)
		}
	}
	svc2 := w.newService()
	e2, err := New(Config{Store: hs, Service: svc2, Clock: w.clock.Now, TickInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e1.CreateRule(ctx, operator, mustSpec(t, `{"id":"p","trigger":{"every":"1h"},"targets":"[\"sensors/1\"]","action":{"type":"rotate_topic"}}`)); err != nil {
		t.Fatal(err)
	}
	e2.known["p"] = struct{}{} // as if e2's subscription had seen the rule
	before := w.rotations("sensors/1")
	w.clock.Add(time.Hour)
	if err := e2.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	hs.mu.Lock()
	conflict := len(hs.errs) > 0 && errors.Is(hs.errs[0], eventstore.ErrConflict)
	n := len(hs.errs)
	hs.mu.Unlock()
	if !conflict || n != 1 {
		t.Fatalf("engine 2 appends: %d, first conflict %v", n, conflict)
	}
	fired := w.ruleEvents("p", TypeRuleFired)
	if len(fired) != 1 {
		t.Fatalf("%d fires, want 1", len(fired))
	}
	if got := w.rotations("sensors/1"); got != before+1 {
		t.Fatalf("%d rotations, want 1", got-before)
	}
}

// share_pubkeys with pairs "all" lists every ordered pair of members.
func TestSharePubKeysAllPairs(t *testing.T) {
	w := newWorld(t, core.PubKey)
	pk := w.suite.(core.PKSuite)
	ctx := context.Background()
	for _, n := range []string{"p1", "p2", "p3"} {
		id, err := pk.GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.NewClient(ctx, operator, byName(n), id.PublicKey(), 0); err != nil {
			t.Fatal(err)
		}
	}
	w.addTopic("group/1", "p1", "p2", "p3")
	w.addTopic("group/2", "p1")
	e := w.engine(nil, "a")
	p, err := e.DryRun(ctx, mustSpec(t, `{"trigger":{"every":"24h"},"targets":"topics | filter(.members > 1)","action":{"type":"share_pubkeys"}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Operations) != 6 || len(p.Targets) != 1 || p.Targets[0] != "group/1" {
		t.Fatalf("plan %+v", p)
	}
	seen := map[[2]string]bool{}
	for _, op := range p.Operations {
		if op.Op != "send_client_pubkey" || op.Client == op.Source {
			t.Fatalf("op %+v", op)
		}
		seen[[2]string{op.Client, op.Source}] = true
	}
	if len(seen) != 6 {
		t.Fatalf("pairs %v", seen)
	}
	// Executed for real, each op succeeds.
	r, err := e.CreateRule(ctx, operator, mustSpec(t, `{"id":"share","trigger":{"every":"24h","fire_on_create":true},"targets":"topics | filter(.members > 1)","action":{"type":"share_pubkeys"}}`))
	if err != nil || r.Fires != 1 || r.LastOutcome != OutcomeSucceeded {
		t.Fatalf("rule %+v %v", r, err)
	}
	raw := w.ruleEvents("share", TypeRuleCompleted)[0].Data
	var c completedEvent
	if err := json.Unmarshal(raw, &c); err != nil || len(c.Results) != 6 {
		t.Fatalf("completion %s %v", raw, err)
	}
}
