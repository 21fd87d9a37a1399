// Package automation is the rule engine of the C2: rules written in
// github.com/expr-lang/expr that react to domain events and to schedules and
// issue ordinary c2.Service operations (rotate a topic key, rotate a client
// key, reset or detach a client, share public keys in a topic, rotate the C2
// key) with the rule as actor and the trigger as causation.
//
// # Rules are events
//
// A rule lives in its own stream "rule-<id>" of the same eventstore.Store the
// C2 uses. Its life (created, updated, paused, resumed, deleted), each fire
// and its outcome, and every loop-guard stop are events with stable versioned
// wire names (see the table in events.go), JSON-encoded, never holding key
// material. The log is therefore the audit trail and the only state: an
// Engine rebuilds its rules by reading the rule streams.
//
// # Exactly once without a lock
//
// A fire starts with an append of rule.fired.v1 to the rule's stream at the
// version the engine just read. Two engines (two C2 instances on one store)
// that want to fire the same period or react to the same event race on that
// append: the store's optimistic concurrency lets exactly one win, and the
// loser, which gets eventstore.ErrConflict, re-reads the stream, sees the fire
// and does not act. The claim precedes the action (so a crash between the two
// loses at most one fire, never doubles one); its outcome is appended after the
// actions as rule.completed.v1.
//
// # Never dropping events
//
// The engine is a store subscriber with a persisted checkpoint (any
// projections.Checkpointer, e.g. projections.FileCheckpoints). After a restart
// it resumes after the checkpoint; the few events processed after the last
// saved checkpoint are processed again, and the fire claim (keyed on the
// causing event id) turns that at-least-once delivery into one fire.
//
// # Order
//
// Events are evaluated one at a time in log order, after the C2's read
// models have applied them, and a fire's operations run before the next
// event is evaluated: a condition or a targets expression always sees the
// effects of earlier fires. Schedules are evaluated by Tick (every
// Config.TickInterval inside Run, or directly with an injected clock).
//
// # Safety
//
// Expressions are compiled once, at create or update time, against a typed
// environment (Env); a compile error carries its line and column and the rule
// is not created. Programs have a node budget (expr.MaxNodes), predicates
// nest at most MaxPredicateDepth deep, and each run has a memory budget
// (vm.VM.MemoryBudget) and a time budget (Config.EvalBudget) checked in
// every predicate iteration together with the caller's context; a live rule
// over its time budget is paused with a recorded reason (rule.paused.v1,
// kind "budget"). The loop guard follows causation: a
// domain event written by a rule's action has the depth of that fire, a fire
// caused by it one more; past Config.MaxDepth, and past the rule's rate
// limit, the rule is stopped with a recorded reason (rule.stopped.v1) instead
// of acting.
//
// See RULES.md for the rule syntax and examples.
package automation
