package automation

import (
	"fmt"
	"time"

	"github.com/e4c2/e4c2/eventstore"
)

// Rule statuses.
const (
	StatusActive  = "active"
	StatusPaused  = "paused"  // by an operator, or by the engine over its time budget
	StatusStopped = "stopped" // by the loop guard (depth or rate limit)
	StatusDeleted = "deleted"
)

// Rule is the state of a rule, folded from its stream.
type Rule struct {
	ID     string `json:"id"`
	Spec   Spec   `json:"spec"`
	Status string `json:"status"`
	// Reason of the last pause or stop.
	Reason string `json:"reason,omitempty"`
	// Version of the rule stream.
	Version   uint64    `json:"version"`
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by"`
	Updated   time.Time `json:"updated"`
	// Fires counts rule.fired.v1 events; LastFired is the time of the
	// last, LastOutcome the outcome of the last completed fire.
	Fires       int       `json:"fires"`
	LastFired   time.Time `json:"last_fired,omitzero"`
	LastOutcome string    `json:"last_outcome,omitempty"`
	// NextFire is the next scheduled fire (scheduled rules).
	NextFire time.Time `json:"next_fire,omitzero"`
}

// ruleState is a rule with what the engine needs to decide a fire.
type ruleState struct {
	Rule
	specVersion uint64    // stream version of the created/updated event
	specPos     uint64    // global position of that event
	specTime    time.Time // its time
	lastTick    time.Time // last schedule tick fired
	fireTimes   []time.Time
	causes      map[string]int // cause id -> depth of its fire
}

const maxFireTimes = 1024

// foldRule builds the state of a rule from its stream records.
func foldRule(id string, recs []eventstore.Record) (*ruleState, error) {
	if len(recs) == 0 {
		return nil, fmt.Errorf("automation: rule %q: %w", id, ErrUnknownRule)
	}
	st := &ruleState{Rule: Rule{ID: id}, causes: map[string]int{}}
	for i := range recs {
		if err := st.apply(&recs[i]); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func (st *ruleState) apply(r *eventstore.Record) error {
	st.Version = r.Version
	switch r.Type {
	case TypeRuleCreated, TypeRuleUpdated:
		var p ruleSpecEvent
		if err := decodePayload(r.Type, r.Data, &p); err != nil {
			return err
		}
		p.Spec.ID = st.ID
		st.Spec = p.Spec
		st.specVersion, st.specPos, st.specTime = r.Version, r.Position, r.Meta.Time
		st.Updated = r.Meta.Time
		if r.Type == TypeRuleCreated {
			st.Status = StatusActive
			st.Created, st.CreatedBy = r.Meta.Time, r.Meta.Actor
		}
	case TypeRulePaused, TypeRuleStopped:
		var p reasonEvent
		if err := decodePayload(r.Type, r.Data, &p); err != nil {
			return err
		}
		st.Status, st.Reason = StatusPaused, p.Reason
		if r.Type == TypeRuleStopped {
			st.Status = StatusStopped
		}
		st.Updated = r.Meta.Time
	case TypeRuleResumed:
		st.Status, st.Reason = StatusActive, ""
		st.Updated = r.Meta.Time
	case TypeRuleDeleted:
		st.Status = StatusDeleted
		st.Updated = r.Meta.Time
	case TypeRuleFired:
		var p firedEvent
		if err := decodePayload(r.Type, r.Data, &p); err != nil {
			return err
		}
		st.Fires++
		st.LastFired = r.Meta.Time
		st.fireTimes = append(st.fireTimes, r.Meta.Time)
		if len(st.fireTimes) > maxFireTimes {
			st.fireTimes = append(st.fireTimes[:0], st.fireTimes[len(st.fireTimes)-maxFireTimes:]...)
		}
		st.causes[p.Cause] = p.Depth
		if p.Trigger != FiredByEvent && p.Tick.After(st.lastTick) {
			st.lastTick = p.Tick
		}
	case TypeRuleCompleted:
		var p completedEvent
		if err := decodePayload(r.Type, r.Data, &p); err != nil {
			return err
		}
		st.LastOutcome = p.Outcome
	default:
		return fmt.Errorf("automation: rule %q: %w: type %q", st.ID, ErrInvalidEvent, r.Type)
	}
	if st.Status == "" {
		return fmt.Errorf("automation: rule %q: %w: stream does not start with %s", st.ID, ErrInvalidEvent, TypeRuleCreated)
	}
	return nil
}

// firesSince counts the fires at or after t.
func (st *ruleState) firesSince(t time.Time) int {
	n := 0
	for i := len(st.fireTimes) - 1; i >= 0 && !st.fireTimes[i].Before(t); i-- {
		n++
	}
	return n
}
