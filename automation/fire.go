package automation

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
)

// maxClaimAttempts bounds the re-reads after losing a claim race on the
// rule stream: each loss means another fire or change was recorded, which
// the re-read takes into account.
const maxClaimAttempts = 16

// maxOperations bounds the operations of one fire (share_pubkeys is
// quadratic in the members of a topic).
const maxOperations = 10000

// load folds a rule's stream.
func (e *Engine) load(ctx context.Context, id string) (*ruleState, error) {
	recs, err := e.store.ReadStream(ctx, Stream(id), 1)
	if err != nil {
		return nil, fmt.Errorf("automation: read rule %q: %w", id, err)
	}
	return foldRule(id, recs)
}

// appendRule appends one rule event at expected.
func (e *Engine) appendRule(ctx context.Context, id string, expected int64, typ string, payload any, meta eventstore.Metadata, evID string) (uint64, error) {
	data, err := encodePayload(payload)
	if err != nil {
		return 0, err
	}
	if evID == "" {
		evID = e.newID()
	}
	v, err := e.store.Append(ctx, Stream(id), expected, eventstore.EventData{ID: evID, Type: typ, Data: data, Meta: meta})
	if err != nil {
		return 0, fmt.Errorf("automation: append %s to rule %q: %w", typ, id, err)
	}
	e.mu.Lock()
	e.known[id] = struct{}{}
	e.mu.Unlock()
	return v, nil
}

func tickID(id string, t time.Time) string {
	return fmt.Sprintf("tick:%s:%d", id, t.Unix())
}

// Tick fires every scheduled rule that is due at the engine clock. Run calls
// it every Config.TickInterval; tests with an injected clock call it
// directly. Several engines may tick the same rules: each period fires once.
func (e *Engine) Tick(ctx context.Context) error {
	e.mu.Lock()
	ids := make([]string, 0, len(e.known))
	for id := range e.known {
		ids = append(ids, id)
	}
	e.mu.Unlock()
	sort.Strings(ids)
	var errs []error
	for _, id := range ids {
		if _, err := e.fire(ctx, id, trigger{kind: FiredBySchedule, depth: 1}); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// fire claims and runs one fire of a rule. It returns whether this engine
// fired. Every decision is taken on a fresh read of the rule's stream and
// recorded with an append at that stream's version, so concurrent engines
// agree.
func (e *Engine) fire(ctx context.Context, id string, tr trigger) (bool, error) {
	for range maxClaimAttempts {
		st, err := e.load(ctx, id)
		if errors.Is(err, ErrUnknownRule) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if st.Status != StatusActive {
			return false, nil
		}
		c, err := e.compiledFor(st)
		if err != nil {
			return false, err
		}
		now := e.now()
		tr, ok := e.due(id, c, st, tr, now)
		if !ok {
			return false, nil
		}
		if kind, reason := e.loopGuard(c, st, tr, now); kind != "" {
			err := e.stop(ctx, id, st, tr, kind, reason)
			if errors.Is(err, eventstore.ErrConflict) {
				continue
			}
			return false, err
		}
		ops, planErr := e.plan(ctx, c, e.fireEnv(c, tr, now))
		if planErr != nil && ctx.Err() != nil {
			return false, ctx.Err()
		}
		if errors.Is(planErr, ErrBudgetExceeded) {
			// Not a fire: the rule is paused before it claims anything.
			return false, e.pauseOverBudget(ctx, id, tr.cause, planErr)
		}
		firedID, v, err := e.claim(ctx, id, st, tr, ops)
		if errors.Is(err, eventstore.ErrConflict) {
			continue // lost the race: re-read, the winner's fire is then on record
		}
		if err != nil {
			return false, err
		}
		e.mu.Lock()
		e.depths.put(id, tr.cause, tr.depth)
		e.mu.Unlock()
		return true, e.complete(ctx, id, tr.cause, firedID, v, ops, planErr)
	}
	return false, fmt.Errorf("automation: rule %q: %w: gave up after %d claim attempts", id, eventstore.ErrConflict, maxClaimAttempts)
}

// due reports whether the rule in state st fires on tr at now, and returns
// tr completed with what the decision found (a schedule's tick and cause).
// A cause already on record was fired for, by another engine or before a
// restart.
func (e *Engine) due(id string, c *compiled, st *ruleState, tr trigger, now time.Time) (trigger, bool) {
	switch tr.kind {
	case FiredByEvent:
		if c.cond == nil || tr.pos <= st.specPos {
			return tr, false
		}
		if _, done := st.causes[tr.cause]; done {
			return tr, false
		}
		if mi := time.Duration(c.spec.Trigger.MinInterval); mi > 0 && !st.LastFired.IsZero() && now.Sub(st.LastFired) < mi {
			return tr, false
		}
	case FiredBySchedule:
		if !c.scheduled() {
			return tr, false
		}
		tick, ok := c.dueTick(st, now, e.cfg.CatchUpGrace)
		if !ok {
			return tr, false
		}
		tr.tick, tr.cause = tick, tickID(id, tick)
		if _, done := st.causes[tr.cause]; done {
			return tr, false
		}
	case FiredOnCreate:
		if st.Fires > 0 {
			return tr, false
		}
		tr.tick = st.Created
	}
	return tr, true
}

// loopGuard returns why a fire must be refused and the rule stopped (a
// causation chain too deep, or too many fires), or "" to go on.
func (e *Engine) loopGuard(c *compiled, st *ruleState, tr trigger, now time.Time) (kind, reason string) {
	if tr.depth > e.cfg.MaxDepth {
		reason = fmt.Sprintf("causation depth %d exceeds the limit %d", tr.depth, e.cfg.MaxDepth)
		if tr.self {
			reason += ": the rule reacts to its own effects"
		}
		return "depth", reason
	}
	if max, per := c.rate(); st.firesSince(now.Add(-per)) >= max {
		return "rate", fmt.Sprintf("rate limit: %d fires within %s", max, per)
	}
	return "", ""
}

// stop records that the rule stopped, with the reason, at the version the
// decision was taken on (ErrConflict: re-read and decide again).
func (e *Engine) stop(ctx context.Context, id string, st *ruleState, tr trigger, kind, reason string) error {
	meta := e.meta(c2.Origin{Actor: "rule:" + id, CausationID: tr.cause})
	_, err := e.appendRule(ctx, id, int64(st.Version), TypeRuleStopped, reasonEvent{Reason: reason, Kind: kind, Cause: tr.cause}, meta, "")
	if err == nil {
		e.log.Warn("automation: rule stopped", "rule", id, "reason", reason)
	}
	return err
}

// fireEnv is the environment of the fire's expressions: the triggering
// event's, or for a schedule one with the clock and, if the rule reads
// them, the clients and topics.
func (e *Engine) fireEnv(c *compiled, tr trigger, now time.Time) *Env {
	if tr.env != nil {
		return tr.env
	}
	env := &Env{Now: now, Mode: e.mode.String()}
	if c.needState {
		env.Clients, env.Topics = e.snapshot()
	}
	return env
}

// claim records the fire with its planned operations at the version the
// decision was taken on: of concurrent engines, exactly one succeeds and
// the others get ErrConflict. It returns the fired event's id and position.
func (e *Engine) claim(ctx context.Context, id string, st *ruleState, tr trigger, ops []Operation) (string, uint64, error) {
	firedID := e.newID()
	meta := e.meta(c2.Origin{Actor: "rule:" + id, CausationID: tr.cause, CorrelationID: firedID})
	fe := firedEvent{Trigger: tr.kind, Cause: tr.cause, CauseType: tr.causeType, Tick: tr.tick, Depth: tr.depth, Operations: ops}
	if fe.Operations == nil {
		fe.Operations = []Operation{}
	}
	v, err := e.appendRule(ctx, id, int64(st.Version), TypeRuleFired, fe, meta, firedID)
	return firedID, v, err
}

// complete runs the claimed fire's operations and records its outcome.
// The append is at any version: the fire is claimed, nothing can undo it.
func (e *Engine) complete(ctx context.Context, id, cause, firedID string, fired uint64, ops []Operation, planErr error) error {
	done := completedEvent{Fired: fired}
	switch {
	case planErr != nil:
		done.Outcome, done.Error = OutcomeFailed, planErr.Error()
	case len(ops) == 0:
		done.Outcome = OutcomeNothing
	default:
		origin := c2.Origin{Actor: "rule:" + id, CausationID: cause, CorrelationID: firedID}
		done.Results = e.execute(ctx, origin, ops)
		done.Outcome = outcomeOf(done.Results)
	}
	cmeta := e.meta(c2.Origin{Actor: "rule:" + id, CausationID: firedID, CorrelationID: firedID})
	_, err := e.appendRule(ctx, id, eventstore.Any, TypeRuleCompleted, done, cmeta, "")
	return err
}

// outcomeOf sums up the results of a fire's operations.
func outcomeOf(results []OpResult) string {
	failed := 0
	for _, r := range results {
		if r.Error != "" {
			failed++
		}
	}
	switch failed {
	case 0:
		return OutcomeSucceeded
	case len(results):
		return OutcomeFailed
	}
	return OutcomePartial
}

// plan evaluates the targets and lists the operations of a fire.
func (e *Engine) plan(ctx context.Context, c *compiled, env *Env) ([]Operation, error) {
	a := c.spec.Action
	if a.Type == ActionRotateC2Key {
		return []Operation{{Op: "new_c2_key"}}, nil
	}
	m := &vm.VM{MemoryBudget: e.cfg.MemoryBudget}
	names, err := e.targetsOf(ctx, m, c, env)
	if err != nil {
		return nil, err
	}
	switch a.Type {
	case ActionRotateTopic:
		return each(names, func(t string) Operation { return Operation{Op: "new_topic", Topic: t} }), nil
	case ActionRotateClientKey:
		return each(names, func(n string) Operation { return Operation{Op: "new_client_key", Client: n} }), nil
	case ActionResetClient:
		return each(names, func(n string) Operation { return Operation{Op: "reset_client", Client: n} }), nil
	case ActionDetachClient:
		topic, err := e.detachTopic(ctx, m, c, env)
		if err != nil || topic == "" {
			return nil, err
		}
		return each(names, func(n string) Operation { return Operation{Op: "remove_topic_client", Client: n, Topic: topic} }), nil
	case ActionSharePubKeys:
		return e.planShare(a.Pairs, env.Event.Client, names)
	}
	return nil, nil
}

// targetsOf returns the fire's targets, without duplicates: those of the
// targets expression, or else the event's topic (topic actions) or client.
func (e *Engine) targetsOf(ctx context.Context, m *vm.VM, c *compiled, env *Env) ([]string, error) {
	a := c.spec.Action
	topicAction := a.Type == ActionRotateTopic || a.Type == ActionSharePubKeys
	var names []string
	switch {
	case c.targets != nil:
		out, err := e.runGuarded(ctx, m, c.targets, env)
		if err != nil {
			return nil, fmt.Errorf("automation: %w: targets: %w", ErrEvaluation, err)
		}
		if names, err = targetNames(out, topicAction); err != nil {
			return nil, err
		}
	case topicAction:
		names = []string{env.Event.Topic}
	default:
		names = []string{env.Event.Client}
	}
	names = dedup(names) // also drops the empty name of an event without one
	if len(names) > c.maxTargets() {
		return nil, fmt.Errorf("automation: %w: %d targets exceed max_targets %d", ErrEvaluation, len(names), c.maxTargets())
	}
	return names, nil
}

// detachTopic is the topic detach_client removes its targets from: the
// action's topic expression, or the event's topic.
func (e *Engine) detachTopic(ctx context.Context, m *vm.VM, c *compiled, env *Env) (string, error) {
	if c.topic == nil {
		return env.Event.Topic, nil
	}
	out, err := e.runGuarded(ctx, m, c.topic, env)
	if err != nil {
		return "", fmt.Errorf("automation: %w: action.topic: %w", ErrEvaluation, err)
	}
	s, ok := out.(string)
	if !ok {
		return "", fmt.Errorf("automation: %w: action.topic returned %T", ErrEvaluation, out)
	}
	return s, nil
}

// planShare lists the public-key exchanges of share_pubkeys in the topics:
// between every pair of members, or with pairs event_client only between
// the event's client and each other member.
func (e *Engine) planShare(pairs, eventClient string, topics []string) ([]Operation, error) {
	var ops []Operation
	for _, t := range topics {
		members := e.memberNames(domain.TopicHash(t))
		if pairs == PairsEventClient {
			ops = append(ops, sharePairsWith(t, eventClient, members)...)
		} else {
			ops = append(ops, shareAllPairs(t, members)...)
		}
		if len(ops) > maxOperations {
			return nil, fmt.Errorf("automation: %w: more than %d operations", ErrEvaluation, maxOperations)
		}
	}
	return ops, nil
}

func sharePairsWith(topic, x string, members []string) []Operation {
	if x == "" {
		return nil
	}
	var ops []Operation
	for _, m := range members {
		if m == x {
			continue
		}
		ops = append(ops, Operation{Op: "send_client_pubkey", Topic: topic, Client: m, Source: x},
			Operation{Op: "send_client_pubkey", Topic: topic, Client: x, Source: m})
	}
	return ops
}

func shareAllPairs(topic string, members []string) []Operation {
	var ops []Operation
	for _, dst := range members {
		for _, src := range members {
			if dst != src {
				ops = append(ops, Operation{Op: "send_client_pubkey", Topic: topic, Client: dst, Source: src})
			}
		}
	}
	return ops
}

// each maps every name to its operation.
func each(names []string, op func(string) Operation) []Operation {
	var ops []Operation
	for _, n := range names {
		ops = append(ops, op(n))
	}
	return ops
}

func dedup(in []string) []string {
	seen := make(map[string]struct{}, len(in))
	out := in[:0]
	for _, s := range in {
		if _, ok := seen[s]; ok || s == "" {
			continue
		}
		seen[s] = struct{}{}
		out = append(out, s)
	}
	return out
}

// targetNames turns what a targets expression returned into names.
func targetNames(out any, topics bool) ([]string, error) {
	var names []string
	var add func(v any, depth int) error
	add = func(v any, depth int) error {
		switch x := v.(type) {
		case nil:
			return nil
		case string:
			names = append(names, x)
		case Topic:
			if !topics {
				return fmt.Errorf("automation: %w: targets: a topic where clients are expected", ErrEvaluation)
			}
			names = append(names, x.Name)
		case Client:
			if topics {
				return fmt.Errorf("automation: %w: targets: a client where topics are expected", ErrEvaluation)
			}
			names = append(names, x.Name)
		case *Topic:
			return add(*x, depth)
		case *Client:
			return add(*x, depth)
		default:
			rv := reflect.ValueOf(v)
			if (rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array) && depth == 0 {
				for i := range rv.Len() {
					if err := add(rv.Index(i).Interface(), depth+1); err != nil {
						return err
					}
				}
				return nil
			}
			return fmt.Errorf("automation: %w: targets: cannot use %T as a target", ErrEvaluation, v)
		}
		return nil
	}
	if err := add(out, 0); err != nil {
		return nil, err
	}
	return names, nil
}

// clientRef names a client for the service: by name when a client of that
// name exists, else by hex id.
func (e *Engine) clientRef(s string) c2.ClientRef {
	ks := e.svc.KeyState()
	if _, ok := ks.Client(domain.ClientID(s)); ok {
		return c2.ByName(s)
	}
	if id, err := domain.ParseID(s); err == nil {
		if _, ok := ks.Client(id); ok {
			return c2.ByID(id)
		}
	}
	return c2.ByName(s)
}

// execute runs the operations of a fire, each an ordinary service call.
func (e *Engine) execute(ctx context.Context, o c2.Origin, ops []Operation) []OpResult {
	out := make([]OpResult, 0, len(ops))
	for _, op := range ops {
		var res c2.Result
		var err error
		switch op.Op {
		case "new_topic":
			// new_topic on a missing topic would create it: a rotation
			// must not.
			if _, ok := e.svc.KeyState().Topic(domain.TopicHash(op.Topic)); !ok {
				err = fmt.Errorf("rotate %q: %w", op.Topic, domain.ErrUnknownTopic)
				break
			}
			res, err = e.svc.RotateTopic(ctx, o, op.Topic)
		case "new_client_key":
			res, err = e.svc.NewClientKey(ctx, o, e.clientRef(op.Client))
		case "reset_client":
			res, err = e.svc.ResetClient(ctx, o, e.clientRef(op.Client))
		case "remove_topic_client":
			res, err = e.svc.RemoveTopicClient(ctx, o, e.clientRef(op.Client), op.Topic)
		case "send_client_pubkey":
			res, err = e.svc.SendClientPubKey(ctx, o, e.clientRef(op.Client), e.clientRef(op.Source))
		case "new_c2_key":
			res, err = e.svc.NewC2Key(ctx, o)
		default:
			err = fmt.Errorf("unknown operation %q", op.Op)
		}
		r := OpResult{Operation: op, Events: res.EventIDs}
		if err != nil {
			r.Error = err.Error()
		}
		out = append(out, r)
	}
	return out
}
