package automation

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/eventstore"
)

// view returns the public view of a folded rule.
func (e *Engine) view(st *ruleState) Rule {
	r := st.Rule
	if c, err := e.compiledFor(st); err == nil && st.Status == StatusActive {
		r.NextFire = c.nextFire(st)
	}
	return r
}

// CreateRule validates and compiles spec and records rule.created.v1.
// An empty spec.ID gets a random one. A compile error is a *CompileError
// (with line and column) wrapping ErrInvalidRule, and nothing is recorded.
// Nothing fires unless spec.Trigger.FireOnCreate is set.
func (e *Engine) CreateRule(ctx context.Context, o c2.Origin, spec Spec) (Rule, error) {
	if spec.ID == "" {
		spec.ID = "r-" + e.newID()[:12]
	}
	if _, err := compileSpec(spec, e.mode, e.cfg.MaxNodes); err != nil {
		return Rule{}, err
	}
	if _, err := e.appendRule(ctx, spec.ID, eventstore.NoStream, TypeRuleCreated, ruleSpecEvent{Spec: spec}, e.meta(o), ""); err != nil {
		if errors.Is(err, eventstore.ErrConflict) {
			return Rule{}, fmt.Errorf("automation: rule %q: %w", spec.ID, ErrRuleExists)
		}
		return Rule{}, err
	}
	if spec.Trigger.FireOnCreate {
		if _, err := e.fire(ctx, spec.ID, trigger{kind: FiredOnCreate, cause: "create:" + spec.ID, depth: 1}); err != nil {
			return Rule{}, fmt.Errorf("automation: rule %q created, first fire: %w", spec.ID, err)
		}
	}
	return e.GetRule(ctx, spec.ID)
}

// change appends one management event after a fresh read, retrying on a
// concurrent append. check refuses the change for the current state; it
// returns skip=true when the rule is already as asked (idempotent).
func (e *Engine) change(ctx context.Context, o c2.Origin, id, typ string, payload any, check func(*ruleState) (skip bool, err error)) (Rule, error) {
	for range maxClaimAttempts {
		st, err := e.load(ctx, id)
		if err != nil {
			return Rule{}, err
		}
		if st.Status == StatusDeleted {
			return Rule{}, fmt.Errorf("automation: rule %q: %w (deleted)", id, ErrUnknownRule)
		}
		skip, err := check(st)
		if err != nil {
			return Rule{}, err
		}
		if skip {
			return e.view(st), nil
		}
		_, err = e.appendRule(ctx, id, int64(st.Version), typ, payload, e.meta(o), "")
		if errors.Is(err, eventstore.ErrConflict) {
			continue
		}
		if err != nil {
			return Rule{}, err
		}
		if typ == TypeRuleDeleted {
			return Rule{}, nil
		}
		return e.GetRule(ctx, id)
	}
	return Rule{}, fmt.Errorf("automation: rule %q: %w", id, eventstore.ErrConflict)
}

// UpdateRule replaces the spec of a rule (spec.ID must be empty or id).
// Its status is kept; a schedule counts again from the update.
func (e *Engine) UpdateRule(ctx context.Context, o c2.Origin, id string, spec Spec) (Rule, error) {
	if spec.ID != "" && spec.ID != id {
		return Rule{}, invalid("spec id %q does not match rule %q", spec.ID, id)
	}
	spec.ID = id
	if _, err := compileSpec(spec, e.mode, e.cfg.MaxNodes); err != nil {
		return Rule{}, err
	}
	return e.change(ctx, o, id, TypeRuleUpdated, ruleSpecEvent{Spec: spec}, func(*ruleState) (bool, error) { return false, nil })
}

// PauseRule pauses an active or stopped rule; reason (no secrets) is
// recorded. Pausing a paused rule changes nothing.
func (e *Engine) PauseRule(ctx context.Context, o c2.Origin, id, reason string) (Rule, error) {
	if len(reason) > 1024 {
		return Rule{}, invalid("reason longer than 1024 bytes")
	}
	return e.change(ctx, o, id, TypeRulePaused, reasonEvent{Reason: reason}, func(st *ruleState) (bool, error) {
		return st.Status == StatusPaused, nil
	})
}

// ResumeRule makes a paused or stopped (loop guard) rule active again.
func (e *Engine) ResumeRule(ctx context.Context, o c2.Origin, id string) (Rule, error) {
	return e.change(ctx, o, id, TypeRuleResumed, struct{}{}, func(st *ruleState) (bool, error) {
		return st.Status == StatusActive, nil
	})
}

// DeleteRule deletes a rule. Its stream stays (audit); its id cannot be
// reused.
func (e *Engine) DeleteRule(ctx context.Context, o c2.Origin, id string) error {
	_, err := e.change(ctx, o, id, TypeRuleDeleted, struct{}{}, func(*ruleState) (bool, error) { return false, nil })
	if err == nil {
		e.mu.Lock()
		delete(e.known, id)
		e.mu.Unlock()
	}
	return err
}

// GetRule returns a rule, read from its stream (always current).
func (e *Engine) GetRule(ctx context.Context, id string) (Rule, error) {
	if !ruleIDPattern.MatchString(id) {
		return Rule{}, fmt.Errorf("automation: rule %q: %w", id, ErrUnknownRule)
	}
	st, err := e.load(ctx, id)
	if err != nil {
		return Rule{}, err
	}
	if st.Status == StatusDeleted {
		return Rule{}, fmt.Errorf("automation: rule %q: %w (deleted)", id, ErrUnknownRule)
	}
	return e.view(st), nil
}

// ListRules returns every rule not deleted, by id. The first call scans the
// log for rule streams (so a CLI engine that never runs lists them too);
// later ones rely on what Run and this engine's own writes add.
func (e *Engine) ListRules(ctx context.Context) ([]Rule, error) {
	if err := e.scanRules(ctx); err != nil {
		return nil, err
	}
	e.mu.Lock()
	ids := make([]string, 0, len(e.known))
	for id := range e.known {
		ids = append(ids, id)
	}
	e.mu.Unlock()
	sort.Strings(ids)
	out := make([]Rule, 0, len(ids))
	for _, id := range ids {
		r, err := e.GetRule(ctx, id)
		if errors.Is(err, ErrUnknownRule) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Plan is what a rule would do now, computed by DryRun without acting.
type Plan struct {
	Rule string `json:"rule"`
	// Trigger is "event" or "schedule".
	Trigger string `json:"trigger"`
	// Matched is the condition's result on the sample event (event rules
	// given a sample); nil otherwise.
	Matched *bool `json:"matched,omitempty"`
	// NextFire is when a scheduled rule fires next (from now for a spec not
	// yet created).
	NextFire   time.Time   `json:"next_fire,omitzero"`
	Targets    []string    `json:"targets"`
	Operations []Operation `json:"operations"`
	// Error is an evaluation error (the fire would record it as failed).
	Error string `json:"error,omitempty"`
}

// DryRun shows what spec would do against the current state: the targets
// and the operations, without executing them or recording anything.
// For an event rule, sample is the event to evaluate against (nil: an empty
// event; then Matched is not reported).
func (e *Engine) DryRun(ctx context.Context, spec Spec, sample *Event) (Plan, error) {
	if spec.ID == "" {
		spec.ID = "dry-run"
	}
	c, err := compileSpec(spec, e.mode, e.cfg.MaxNodes)
	if err != nil {
		return Plan{}, err
	}
	now := e.now()
	p := Plan{Rule: spec.ID, Trigger: FiredByEvent, Targets: []string{}, Operations: []Operation{}}
	if c.scheduled() {
		p.Trigger = FiredBySchedule
		p.NextFire = c.nextTick(now)
	}
	env := &Env{Now: now, Mode: e.mode.String()}
	if sample != nil {
		env.Event = *sample
	}
	env.Clients, env.Topics = e.snapshot()
	if sample != nil && c.cond != nil {
		m := &vm.VM{MemoryBudget: e.cfg.MemoryBudget}
		ok, err := e.evalCond(ctx, m, c, env)
		if err != nil {
			if ctx.Err() != nil {
				return Plan{}, fmt.Errorf("automation: dry run: %w", ctx.Err())
			}
			p.Error = err.Error()
			return p, nil
		}
		p.Matched = &ok
	}
	ops, err := e.plan(ctx, c, env)
	if err != nil {
		if ctx.Err() != nil {
			return Plan{}, fmt.Errorf("automation: dry run: %w", ctx.Err())
		}
		p.Error = err.Error()
		return p, nil
	}
	p.Operations = append(p.Operations, ops...)
	seen := map[string]bool{}
	for _, op := range ops {
		t := op.Topic
		switch op.Op {
		case "new_client_key", "reset_client", "remove_topic_client":
			t = op.Client
		case "new_c2_key":
			t = "c2"
		}
		if !seen[t] {
			seen[t] = true
			p.Targets = append(p.Targets, t)
		}
	}
	return p, nil
}

// DryRunRule is DryRun for an existing rule.
func (e *Engine) DryRunRule(ctx context.Context, id string, sample *Event) (Plan, error) {
	r, err := e.GetRule(ctx, id)
	if err != nil {
		return Plan{}, err
	}
	p, err := e.DryRun(ctx, r.Spec, sample)
	if err == nil && !r.NextFire.IsZero() {
		p.NextFire = r.NextFire
	}
	return p, err
}

// scanRules records the ids of every rule stream in the log, once.
func (e *Engine) scanRules(ctx context.Context) error {
	e.mu.Lock()
	done := e.scanned
	e.mu.Unlock()
	if done {
		return nil
	}
	ids := map[string]bool{}
	for from := uint64(1); ; {
		recs, err := e.store.ReadAll(ctx, from, 4096)
		if err != nil {
			return fmt.Errorf("automation: scan rules: %w", err)
		}
		if len(recs) == 0 {
			break
		}
		for i := range recs {
			if id, ok := strings.CutPrefix(recs[i].Stream, StreamPrefix); ok {
				ids[id] = recs[i].Type != TypeRuleDeleted
			}
		}
		from = recs[len(recs)-1].Position + 1
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, live := range ids {
		if live {
			e.known[id] = struct{}{}
		} else {
			delete(e.known, id)
		}
	}
	e.scanned = true
	return nil
}
