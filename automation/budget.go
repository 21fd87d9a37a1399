package automation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/eventstore"
)

// MaxPredicateDepth is how deeply predicates may nest in one expression:
// any, all, none, one, filter, map, count, sum, find, findIndex, findLast,
// findLastIndex, groupBy, sortBy and reduce each run their predicate once
// per element, so n nested predicates over a list of k elements cost k^n
// steps while allocating nothing (the memory budget never trips). Two
// levels ("the topics that share a client with another topic") cover the
// rules we know of; a third is refused at compile time with its position.
const MaxPredicateDepth = 2

// defaultEvalBudget is the default time budget of one expression run.
const defaultEvalBudget = 50 * time.Millisecond

// ErrBudgetExceeded: an expression ran longer than Config.EvalBudget and
// was stopped. It is wrapped together with ErrEvaluation.
var ErrBudgetExceeded = errors.New("evaluation time budget exceeded")

// PauseKindBudget is the Kind of the rule.paused.v1 the engine records
// when a live evaluation of a rule exceeds its time budget.
const PauseKindBudget = "budget"

// guardFunc is the function the compiler inserts at the start of every
// predicate body. expr's VM cannot be interrupted from outside (Run takes
// no context and has no step hook outside a debug build), and every loop
// of the language is a predicate, so checking the budget there bounds the
// work between two checks by the node budget of one body.
const guardFunc = "__budget"

// guardEvery is how many predicate iterations run between two looks at
// the clock and the context: a look costs tens of nanoseconds, one
// iteration at least as much, so the check stays a few percent of the run
// while a runaway loop is still stopped within microseconds.
const guardEvery = 16

// evalGuard is the budget of one run. It is only touched by the goroutine
// running the VM, so it needs no lock.
type evalGuard struct {
	ctx      context.Context // nil: no run in progress
	deadline time.Time
	budget   time.Duration
	n        uint32
	err      error // why the run was stopped
}

func (g *evalGuard) check() error {
	if g.err != nil {
		return g.err
	}
	g.n++
	if g.n%guardEvery != 0 {
		return nil
	}
	if err := g.ctx.Err(); err != nil {
		g.err = err
	} else if time.Now().After(g.deadline) {
		g.err = fmt.Errorf("%w (%s)", ErrBudgetExceeded, g.budget)
	}
	return g.err
}

// guardCall is the function behind guardFunc. Its argument is the
// environment ($env): a run started by runGuarded carries its guard there,
// in a field expressions cannot see. Called by a rule author by hand it
// only checks the budget of the run it is in.
func guardCall(params ...any) (any, error) {
	if len(params) == 1 {
		if env, ok := params[0].(*Env); ok && env.guard.ctx != nil {
			if err := env.guard.check(); err != nil {
				return nil, err
			}
		}
	}
	return true, nil
}

// guardOptions are the compile options that make a program interruptible.
func guardOptions() []expr.Option {
	return []expr.Option{
		expr.Function(guardFunc, guardCall, new(func(any) bool)),
		expr.Patch(guardPatcher{}),
	}
}

// guardPatcher prefixes every predicate body with a call of guardFunc: the
// body p becomes the sequence "__budget($env); p", whose value and type are
// those of p.
type guardPatcher struct{}

func (guardPatcher) Visit(n *ast.Node) {
	p, ok := (*n).(*ast.PredicateNode)
	if !ok || p.Node == nil {
		return
	}
	if seq, ok := p.Node.(*ast.SequenceNode); ok && len(seq.Nodes) > 0 && isGuardCall(seq.Nodes[0]) {
		return // patched already
	}
	call := &ast.CallNode{
		Callee:    &ast.IdentifierNode{Value: guardFunc},
		Arguments: []ast.Node{&ast.IdentifierNode{Value: "$env"}},
	}
	call.SetLocation(p.Location())
	seq := &ast.SequenceNode{Nodes: []ast.Node{call, p.Node}}
	seq.SetLocation(p.Node.Location())
	p.Node = seq
}

func isGuardCall(n ast.Node) bool {
	c, ok := n.(*ast.CallNode)
	if !ok {
		return false
	}
	id, ok := c.Callee.(*ast.IdentifierNode)
	return ok && id.Value == guardFunc
}

// runGuarded runs p on env with the engine's time budget and ctx: the run
// stops, in the goroutine that runs it, at the first predicate iteration
// after the budget is spent or ctx is done. A stopped run returns an error
// wrapping ErrBudgetExceeded or ctx's error.
func (e *Engine) runGuarded(ctx context.Context, m *vm.VM, p *vm.Program, env *Env) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The guard lives in env by value: no allocation per run.
	env.guard = evalGuard{ctx: ctx, deadline: time.Now().Add(e.cfg.EvalBudget), budget: e.cfg.EvalBudget}
	out, err := m.Run(p, env)
	stopped := env.guard.err
	env.guard = evalGuard{}
	if stopped != nil {
		// The VM reports the guard's error with its position; the
		// cause is what callers test.
		return nil, stopped
	}
	return out, err
}

// predicateCollector lists the predicates of a tree in post-order (inner
// before outer) and the builtin each one belongs to.
type predicateCollector struct {
	preds []*ast.PredicateNode
	owner map[*ast.PredicateNode]*ast.BuiltinNode
}

func (c *predicateCollector) Visit(n *ast.Node) {
	switch v := (*n).(type) {
	case *ast.PredicateNode:
		c.preds = append(c.preds, v)
	case *ast.BuiltinNode:
		if c.owner == nil {
			return
		}
		for _, a := range v.Arguments {
			if p, ok := a.(*ast.PredicateNode); ok {
				c.owner[p] = v
			}
		}
	}
}

func predicatesIn(n *ast.Node) []*ast.PredicateNode {
	c := &predicateCollector{}
	ast.Walk(n, c)
	return c.preds
}

// checkPredicateDepth refuses an expression whose predicates nest deeper
// than MaxPredicateDepth, at the position of the first call too deep. An
// expression that does not parse is left to expr.Compile, which reports
// the syntax error.
func checkPredicateDepth(field, src string) error {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil
	}
	all := &predicateCollector{owner: map[*ast.PredicateNode]*ast.BuiltinNode{}}
	ast.Walk(&tree.Node, all)
	// In reverse post-order every predicate comes after all the predicates
	// that enclose it, so its count of enclosing predicates is final when
	// it is reached. Only predicates within the limit are walked: the
	// check costs at most MaxPredicateDepth+1 walks of the tree.
	enclosing := map[*ast.PredicateNode]int{}
	for i := len(all.preds) - 1; i >= 0; i-- {
		p := all.preds[i]
		level := enclosing[p] + 1
		if level > MaxPredicateDepth {
			loc, name := p.Location(), "predicate"
			if b := all.owner[p]; b != nil {
				loc, name = b.Location(), b.Name+"()"
			}
			fe := (&file.Error{Location: loc}).Bind(file.NewSource(src))
			return &CompileError{Field: field, Line: fe.Line, Column: fe.Column,
				Message: fmt.Sprintf("%s nests predicates %d deep; at most %d levels of any, all, filter, map, count, ... are allowed inside one another", name, level, MaxPredicateDepth)}
		}
		for _, q := range predicatesIn(&p.Node) {
			enclosing[q]++
		}
	}
	return nil
}

// pauseOverBudget pauses a rule whose live evaluation exceeded its time
// budget, with the reason on record (rule.paused.v1, kind "budget"): a rule
// that costs that much on one event would cost it again on the next, on
// the goroutine every other rule waits for. The operator fixes the rule and
// resumes it. Like the loop guard's stop, the decision is an append at the
// version just read, so concurrent engines record one pause.
func (e *Engine) pauseOverBudget(ctx context.Context, id, cause string, evalErr error) error {
	reason := fmt.Sprintf("paused by the engine: %v", evalErr)
	for range maxClaimAttempts {
		st, err := e.load(ctx, id)
		if err != nil {
			return err
		}
		if st.Status != StatusActive {
			return nil
		}
		meta := e.meta(c2.Origin{Actor: "rule:" + id, CausationID: cause})
		_, err = e.appendRule(ctx, id, int64(st.Version), TypeRulePaused,
			reasonEvent{Reason: reason, Kind: PauseKindBudget, Cause: cause}, meta, "")
		if errors.Is(err, eventstore.ErrConflict) {
			continue
		}
		if err != nil {
			return err
		}
		e.log.Warn("automation: rule paused", "rule", id, "reason", reason)
		return nil
	}
	return fmt.Errorf("automation: pause rule %q: %w", id, eventstore.ErrConflict)
}
