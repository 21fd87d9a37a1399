package automation

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/eventcodec"
)

// eventRules returns the rules with an event trigger, by id.
func (e *Engine) eventRules() []*entry {
	out := make([]*entry, 0, len(e.active))
	for _, en := range e.active {
		if en.c != nil && en.c.cond != nil {
			out = append(out, en)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// process evaluates the event-triggered rules on one domain record and
// fires those that match. It runs on the subscription goroutine.
func (e *Engine) process(ctx context.Context, r *eventstore.Record) (bool, error) {
	e.mu.Lock()
	rules := e.eventRules()
	e.mu.Unlock()
	if len(rules) == 0 {
		return false, nil
	}
	ev, err := eventcodec.DecodeRecord(r)
	if err != nil {
		if !errors.Is(err, domain.ErrUnknownEvent) {
			e.log.Warn("automation: undecodable event skipped", "position", r.Position, "type", r.Type, "err", err)
		}
		return false, nil
	}
	// Conditions and targets read the state that includes this event.
	if err := e.svc.WaitPosition(ctx, r.Position); err != nil {
		return false, fmt.Errorf("automation: wait for read models: %w", err)
	}
	env := Env{Event: e.eventEnv(ctx, r, ev), Now: e.now(), Mode: e.mode.String()}
	stateBuilt := false
	fired := false
	for _, en := range rules {
		if en.status != StatusActive || r.Position <= en.specPos {
			continue
		}
		if en.c.needState && !stateBuilt {
			env.Clients, env.Topics = e.snapshot()
			stateBuilt = true
		}
		ok, err := e.evalCond(ctx, &e.loopVM, en.c, &env)
		if err != nil {
			if ctx.Err() != nil {
				return fired, ctx.Err()
			}
			if errors.Is(err, ErrBudgetExceeded) {
				if err := e.pauseOverBudget(ctx, en.id, r.ID, err); err != nil {
					e.log.Warn("automation: pause over budget", "rule", en.id, "err", err)
				} else {
					// Skip it for the events before its pause record
					// comes by (this goroutine owns en.status).
					e.mu.Lock()
					en.status = StatusPaused
					e.mu.Unlock()
				}
				continue
			}
			e.log.Warn("automation: condition failed", "rule", en.id, "position", r.Position, "err", err)
			continue
		}
		if !ok {
			continue
		}
		if en.c.needState || en.c.targets != nil || en.c.topic != nil {
			if !stateBuilt {
				env.Clients, env.Topics = e.snapshot()
				stateBuilt = true
			}
		}
		done, err := e.fire(ctx, en.id, trigger{kind: FiredByEvent, cause: r.ID, causeType: r.Type,
			pos: r.Position, depth: env.Event.Depth + 1, env: &env,
			self: r.Meta.Actor == "rule:"+en.id})
		if err != nil {
			if ctx.Err() != nil {
				return fired, ctx.Err()
			}
			e.log.Warn("automation: fire failed", "rule", en.id, "position", r.Position, "err", err)
		}
		fired = fired || done
	}
	return fired, nil
}

// evalCond runs a condition with a reused VM, within the time budget and
// ctx.
func (e *Engine) evalCond(ctx context.Context, m *vm.VM, c *compiled, env *Env) (bool, error) {
	out, err := e.runGuarded(ctx, m, c.cond, env)
	if err != nil {
		return false, fmt.Errorf("automation: %w: trigger.event: %w", ErrEvaluation, err)
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("automation: %w: trigger.event returned %T", ErrEvaluation, out)
	}
	return b, nil
}

// eventEnv is the expression view of a domain event.
func (e *Engine) eventEnv(ctx context.Context, r *eventstore.Record, ev domain.Event) Event {
	out := Event{
		Type: r.Type, ID: r.ID, Stream: r.Stream, Position: int(r.Position),
		Actor: r.Meta.Actor, CausationID: r.Meta.CausationID, CorrelationID: r.Meta.CorrelationID,
		Time: r.Meta.Time,
	}
	setClient := func(id domain.ID) {
		out.ClientID = id.String()
		out.Client = e.clientName(ctx, id)
	}
	setTopic := func(h domain.ID) {
		out.TopicHash = h.String()
		out.Topic = e.topicName(ctx, h)
	}
	switch v := ev.(type) {
	case *domain.ClientRegistered:
		if v.Name != "" {
			e.rememberName(v.Client, v.Name)
		}
		setClient(v.Client)
		out.Role = v.Role.String()
	case *domain.ClientRemoved:
		setClient(v.Client)
	case *domain.ClientKeyRotated:
		setClient(v.Client)
	case *domain.ClientTopicsReset:
		setClient(v.Client)
	case *domain.TopicCreated:
		e.rememberName(v.Topic, v.Name)
		setTopic(v.Topic)
	case *domain.TopicKeyRotated:
		setTopic(v.Topic)
	case *domain.TopicRemoved:
		setTopic(v.Topic)
	case *domain.TopicClientLinked:
		setTopic(v.Topic)
		setClient(v.Client)
	case *domain.TopicClientUnlinked:
		setTopic(v.Topic)
		setClient(v.Client)
	case *domain.CommandQueued:
		out.Command = v.Code.String()
		out.Recipients = len(v.Recipients)
		if !v.Topic.IsZero() {
			setTopic(v.Topic)
		}
		if len(v.Recipients) == 1 {
			setClient(v.Recipients[0].Client)
		}
	case *domain.CommandDelivered:
		setClient(v.Client)
	case *domain.CommandFailed:
		setClient(v.Client)
		out.Reason = v.Reason
	case *domain.MonitorFinding:
		setTopic(v.Topic)
		if !v.Client.IsZero() {
			setClient(v.Client)
		}
		out.Kind, out.Count, out.KeyVersion = v.Kind, int(min(v.Count, 1<<62)), int(min(v.KeyVersion, 1<<62))
		out.Reason = v.Detail
	}
	if rule, ok := strings.CutPrefix(r.Meta.Actor, "rule:"); ok {
		e.mu.Lock()
		d, found := e.depths.get(rule, r.Meta.CausationID)
		e.mu.Unlock()
		if !found {
			d = 1
		}
		out.Depth = d
	}
	return out
}

func (e *Engine) rememberName(id domain.ID, name string) {
	e.mu.Lock()
	if len(e.names) > 1<<20 {
		clear(e.names)
	}
	e.names[id] = name
	e.mu.Unlock()
}

func (e *Engine) cachedName(id domain.ID) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n, ok := e.names[id]
	return n, ok
}

// topicName returns the name of a topic hash: from the cache, the read
// model, or the topic.created.v1 event of a removed topic.
func (e *Engine) topicName(ctx context.Context, h domain.ID) string {
	if n, ok := e.cachedName(h); ok {
		return n
	}
	if t, ok := e.svc.KeyState().Topic(h); ok && t.Name != "" {
		e.rememberName(h, t.Name)
		return t.Name
	}
	if recs, err := e.store.ReadStream(ctx, domain.TopicStream(h), 1); err == nil && len(recs) > 0 {
		if ev, err := eventcodec.DecodeRecord(&recs[0]); err == nil {
			if tc, ok := ev.(*domain.TopicCreated); ok {
				e.rememberName(h, tc.Name)
				return tc.Name
			}
		}
	}
	return ""
}

// clientName returns the name of a client, or its hex id when it was
// registered without one.
func (e *Engine) clientName(ctx context.Context, id domain.ID) string {
	if n, ok := e.cachedName(id); ok {
		return n
	}
	name := ""
	if c, ok := e.svc.KeyState().Client(id); ok {
		name = c.Name
	} else if recs, err := e.store.ReadStream(ctx, domain.ClientStream(id), 1); err == nil && len(recs) > 0 {
		if ev, err := eventcodec.DecodeRecord(&recs[0]); err == nil {
			if cr, ok := ev.(*domain.ClientRegistered); ok {
				name = cr.Name
			}
		}
	}
	if name == "" {
		name = id.String()
	}
	e.rememberName(id, name)
	return name
}

// snapshot builds the clients and topics lists from the read model.
func (e *Engine) snapshot() ([]Client, []Topic) {
	ks := e.svc.KeyState()
	var clients []Client
	for cur := 0; ; {
		page, next := ks.Clients(cur, 1000)
		for _, c := range page {
			name := c.Name
			if name == "" {
				name = c.ID.String()
			}
			clients = append(clients, Client{Name: name, ID: c.ID.String(), Role: c.Role.String(),
				Topics: c.Topics, Pending: c.Pending, KeyVersion: int(c.KeyVersion),
				Created: c.Created, Updated: c.Updated})
		}
		if next == 0 || len(page) == 0 {
			break
		}
		cur = next
	}
	var topics []Topic
	for cur := 0; ; {
		page, next := ks.Topics(cur, 1000)
		for _, t := range page {
			tp := Topic{Name: t.Name, Hash: t.Hash.String(), Members: t.Members,
				KeyVersion: int(t.KeyVersion), Created: t.Created, Rotated: t.Rotated}
			tp.Clients = e.memberNames(t.Hash)
			topics = append(topics, tp)
		}
		if next == 0 || len(page) == 0 {
			break
		}
		cur = next
	}
	return clients, topics
}

func (e *Engine) memberNames(h domain.ID) []string {
	ks := e.svc.KeyState()
	var out []string
	for cur := 0; ; {
		page, next, ok := ks.TopicClients(h, cur, 1000)
		if !ok {
			return out
		}
		for _, c := range page {
			name := c.Name
			if name == "" {
				name = c.ID.String()
			}
			out = append(out, name)
		}
		if next == 0 || len(page) == 0 {
			return out
		}
		cur = next
	}
}

// trigger describes what makes a fire.
type trigger struct {
	kind      string
	cause     string
	causeType string
	pos       uint64
	depth     int
	tick      time.Time
	env       *Env
	self      bool // the event was written by this very rule
}
