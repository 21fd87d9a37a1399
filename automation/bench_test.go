package automation

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/eventcodec"
	"github.com/e4c2/e4c2/suites/core"
)

// benchConditions returns 100 realistic conditions, none of which matches
// the benchmark's events (so the benchmark measures evaluation, not
// actions): prefix, regex, membership and actor checks.
func benchConditions() []string {
	var out []string
	for i := range 100 {
		switch i % 4 {
		case 0:
			out = append(out, fmt.Sprintf(`event.type == "topic.client_linked.v1" && hasPrefix(event.topic, "sensors/%d/")`, i))
		case 1:
			out = append(out, fmt.Sprintf(`event.type in ["topic.client_unlinked.v1", "client.removed.v1"] && event.topic matches "^zone%d/[a-z]+$"`, i))
		case 2:
			out = append(out, fmt.Sprintf(`event.depth == 0 && !hasPrefix(event.actor, "rule:") && event.client == "dev-%d"`, 1000+i))
		case 3:
			out = append(out, fmt.Sprintf(`event.type == "command.failed.v1" && event.reason contains "timeout" && event.recipients > %d`, i))
		}
	}
	return out
}

// benchEvents builds a real log: clients linked to, unlinked from and
// rotated on topics, with the commands they queue.
func benchEvents(b *testing.B) (*world, *Engine, []eventstore.Record) {
	w := newWorld(b, core.SymKey)
	ctx := context.Background()
	for i := range 20 {
		w.addClient(fmt.Sprintf("dev-%d", i))
	}
	for i := range 10 {
		topic := fmt.Sprintf("plant/%d/temp", i)
		w.addTopic(topic, "dev-1", "dev-2")
		if _, err := w.svc.RemoveTopicClient(ctx, operator, c2.ByName("dev-1"), topic); err != nil {
			b.Fatal(err)
		}
		if _, err := w.svc.NewTopic(ctx, operator, topic); err != nil {
			b.Fatal(err)
		}
	}
	recs, err := w.store.ReadAll(ctx, 1, 100000)
	if err != nil {
		b.Fatal(err)
	}
	e := w.engine(nil, "bench")
	return w, e, recs
}

func compileBench(b *testing.B) []*compiled {
	var cs []*compiled
	for i, cond := range benchConditions() {
		c, err := compileSpec(Spec{ID: fmt.Sprintf("r%d", i), Trigger: Trigger{Event: cond}, Action: Action{Type: ActionRotateTopic}}, core.SymKey, defaultMaxNodes)
		if err != nil {
			b.Fatal(err)
		}
		cs = append(cs, c)
	}
	return cs
}

// BenchmarkEvaluate100Rules: the engine's per-event path (decode the
// record, build the event view, run 100 compiled conditions on one reused
// VM), in rule evaluations per second on one goroutine. Baselines in the
// same run: expr.Run (a new VM per evaluation) and the same checks written
// in Go.
func BenchmarkEvaluate100Rules(b *testing.B) {
	_, e, recs := benchEvents(b)
	cs := compileBench(b)
	ctx := context.Background()
	for i := range recs { // warm the name cache, as a running engine has
		if ev, err := eventcodec.DecodeRecord(&recs[i]); err == nil {
			e.eventEnv(ctx, &recs[i], ev)
		}
	}
	run := func(b *testing.B, eval func(c *compiled, env *Env) bool) {
		b.ReportAllocs()
		evals, matched := 0, 0
		for i := 0; b.Loop(); i++ {
			r := &recs[i%len(recs)]
			ev, err := eventcodec.DecodeRecord(r)
			if err != nil {
				b.Fatal(err)
			}
			env := Env{Event: e.eventEnv(ctx, r, ev), Mode: "sk"}
			for _, c := range cs {
				if eval(c, &env) {
					matched++
				}
				evals++
			}
		}
		if matched != 0 {
			b.Fatalf("%d matches: the benchmark would fire rules", matched)
		}
		b.ReportMetric(float64(evals)/b.Elapsed().Seconds(), "evals/s")
	}
	b.Run("engine-reused-vm", func(b *testing.B) {
		m := &vm.VM{MemoryBudget: defaultMemoryBudget}
		run(b, func(c *compiled, env *Env) bool {
			ok, err := e.evalCond(ctx, m, c, env)
			if err != nil {
				b.Fatal(err)
			}
			return ok
		})
	})
	b.Run("baseline-expr.Run", func(b *testing.B) {
		run(b, func(c *compiled, env *Env) bool {
			out, err := expr.Run(c.cond, env)
			if err != nil {
				b.Fatal(err)
			}
			return out.(bool)
		})
	})
	b.Run("baseline-native-go", func(b *testing.B) {
		type native struct {
			kind   int
			prefix string
			n      int
			client string
		}
		var ns []native
		for i := range 100 {
			ns = append(ns, native{kind: i % 4, prefix: fmt.Sprintf("sensors/%d/", i), n: i, client: fmt.Sprint("dev-", 1000+i)})
		}
		k := 0
		run(b, func(_ *compiled, env *Env) bool {
			n := ns[k%len(ns)]
			k++
			ev := &env.Event
			switch n.kind {
			case 0:
				return ev.Type == "topic.client_linked.v1" && strings.HasPrefix(ev.Topic, n.prefix)
			case 1:
				return (ev.Type == "topic.client_unlinked.v1" || ev.Type == "client.removed.v1") && strings.HasPrefix(ev.Topic, "zone")
			case 2:
				return ev.Depth == 0 && !strings.HasPrefix(ev.Actor, "rule:") && ev.Client == n.client
			default:
				return ev.Type == "command.failed.v1" && strings.Contains(ev.Reason, "timeout") && ev.Recipients > n.n
			}
		})
	})
}

// benchMixed returns 100 rules as operators write them: most do not match
// but get past their first comparison on many events (so evaluation is not
// the first comparison alone), and 20 match events of the benchmark's log;
// those compute their targets from the read model and plan operations.
func benchMixed() []Spec {
	var out []Spec
	for i := range 100 {
		id := fmt.Sprintf("m%d", i)
		var s Spec
		switch {
		case i < 10: // the unlink of one client from plant/i: rotate that topic (the event's)
			s = Spec{Trigger: Trigger{Event: fmt.Sprintf(`event.type == "topic.client_unlinked.v1" && hasPrefix(event.topic, "plant/%d/")`, i)},
				Action: Action{Type: ActionRotateTopic}}
		case i < 15: // every operator rotation: rotate the linked topics of a plant, from the read model
			s = Spec{Trigger: Trigger{Event: `event.type == "topic.key_rotated.v1" && event.depth == 0`},
				Targets: fmt.Sprintf(`topics | filter(.members > 0 && hasPrefix(.name, "plant/%d")) | map(.name)`, i-10),
				Action:  Action{Type: ActionRotateTopic}}
		case i < 20: // a link of dev-1 or dev-2: rotate the keys of the linked dev-1* clients
			s = Spec{Trigger: Trigger{Event: `event.type == "topic.client_linked.v1" && event.client in ["dev-1", "dev-2"]`},
				Targets: `clients | filter(.topics > 0 && hasPrefix(.name, "dev-1")) | map(.name)`,
				Action:  Action{Type: ActionRotateClientKey}}
		case i%3 == 0: // past two comparisons on every link of the log
			s = Spec{Trigger: Trigger{Event: fmt.Sprintf(`event.depth == 0 && hasPrefix(event.topic, "plant/") && event.client == "dev-%d"`, 1000+i)},
				Action: Action{Type: ActionRotateTopic}}
		case i%3 == 1: // a regular expression on every topic event
			s = Spec{Trigger: Trigger{Event: fmt.Sprintf(`event.topic != "" && event.topic matches "^plant/%d/(hum|pressure)$"`, i)},
				Action: Action{Type: ActionRotateTopic}}
		default: // command events: past the type on every queued command
			s = Spec{Trigger: Trigger{Event: fmt.Sprintf(`event.type == "command.queued.v1" && event.command == "SetTopicKey" && event.recipients > %d`, 1000+i)},
				Action: Action{Type: ActionRotateTopic}}
		}
		s.ID = id
		out = append(out, s)
	}
	return out
}

// BenchmarkEvaluate100RulesMixed is the engine's per-event path with the
// realistic mix of benchMixed: every condition evaluated, and for each
// match the read model snapshot (once per event), the targets and the
// planned operations, as a fire computes them before it acts. Reported
// next to BenchmarkEvaluate100Rules's never-matching rules: rules/s,
// matches and planned operations per event.
func BenchmarkEvaluate100RulesMixed(b *testing.B) {
	_, e, recs := benchEvents(b)
	ctx := context.Background()
	var cs []*compiled
	for _, s := range benchMixed() {
		c, err := compileSpec(s, core.SymKey, defaultMaxNodes)
		if err != nil {
			b.Fatal(err)
		}
		cs = append(cs, c)
	}
	for i := range recs { // warm the name cache, as a running engine has
		if ev, err := eventcodec.DecodeRecord(&recs[i]); err == nil {
			e.eventEnv(ctx, &recs[i], ev)
		}
	}
	b.ReportAllocs()
	m := &vm.VM{MemoryBudget: defaultMemoryBudget}
	events, evals, matched, planned := 0, 0, 0, 0
	for i := 0; b.Loop(); i++ {
		r := &recs[i%len(recs)]
		ev, err := eventcodec.DecodeRecord(r)
		if err != nil {
			b.Fatal(err)
		}
		env := Env{Event: e.eventEnv(ctx, r, ev), Mode: "sk"}
		stateBuilt := false
		for _, c := range cs {
			if c.needState && !stateBuilt {
				env.Clients, env.Topics = e.snapshot()
				stateBuilt = true
			}
			ok, err := e.evalCond(ctx, m, c, &env)
			if err != nil {
				b.Fatal(err)
			}
			evals++
			if !ok {
				continue
			}
			matched++
			if !stateBuilt {
				env.Clients, env.Topics = e.snapshot()
				stateBuilt = true
			}
			ops, err := e.plan(ctx, c, &env)
			if err != nil {
				b.Fatal(err)
			}
			planned += len(ops)
		}
		events++
	}
	if matched == 0 || planned == 0 {
		b.Fatalf("%d matches, %d operations planned: the mix must match some events", matched, planned)
	}
	b.ReportMetric(float64(evals)/b.Elapsed().Seconds(), "evals/s")
	b.ReportMetric(float64(matched)/float64(events), "matches/event")
	b.ReportMetric(float64(planned)/float64(events), "ops-planned/event")
}
