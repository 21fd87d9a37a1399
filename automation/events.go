package automation

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// StreamPrefix starts the stream name of every rule: "rule-<id>".
const StreamPrefix = "rule-"

// Stream returns the stream of rule id.
func Stream(id string) string { return StreamPrefix + id }

// Wire names of the rule events: the only table. A changed payload shape
// gets a new name (".v2") and keeps the old decoder, so a stored log always
// replays.
const (
	TypeRuleCreated   = "rule.created.v1"
	TypeRuleUpdated   = "rule.updated.v1"
	TypeRulePaused    = "rule.paused.v1"
	TypeRuleResumed   = "rule.resumed.v1"
	TypeRuleDeleted   = "rule.deleted.v1"
	TypeRuleFired     = "rule.fired.v1"
	TypeRuleCompleted = "rule.completed.v1"
	TypeRuleStopped   = "rule.stopped.v1"
)

// WireNames returns every rule event wire name.
func WireNames() []string {
	return []string{TypeRuleCreated, TypeRuleUpdated, TypeRulePaused, TypeRuleResumed,
		TypeRuleDeleted, TypeRuleFired, TypeRuleCompleted, TypeRuleStopped}
}

// IsRuleEvent reports whether a wire name belongs to this package.
func IsRuleEvent(wireType string) bool { return strings.HasPrefix(wireType, "rule.") }

// ruleCreated is the payload of rule.created.v1 and rule.updated.v1.
type ruleSpecEvent struct {
	Spec Spec `json:"spec"`
}

// reasonEvent is the payload of rule.paused.v1 and rule.stopped.v1.
type reasonEvent struct {
	Reason string `json:"reason,omitempty"`
	// Kind of a stop: "depth" (causation depth limit) or "rate" (rate
	// limit); of a pause by the engine: "budget" (an evaluation exceeded
	// its time budget). Empty for an operator's pause.
	Kind string `json:"kind,omitempty"`
	// Cause is the event or tick that would have fired the rule.
	Cause string `json:"cause,omitempty"`
}

// Trigger kinds recorded in rule.fired.v1.
const (
	FiredByEvent    = "event"
	FiredBySchedule = "schedule"
	FiredOnCreate   = "create"
)

// firedEvent is the payload of rule.fired.v1: the claim of one fire.
type firedEvent struct {
	Trigger string `json:"trigger"`
	// Cause is the id of the triggering event, or the tick id of a
	// schedule ("tick:<rule>:<unix seconds>").
	Cause     string    `json:"cause"`
	CauseType string    `json:"cause_type,omitempty"`
	Tick      time.Time `json:"tick,omitzero"`
	Depth     int       `json:"depth"`
	// Operations planned (what the actions will call).
	Operations []Operation `json:"operations"`
}

// Outcomes recorded in rule.completed.v1.
const (
	OutcomeSucceeded = "succeeded"
	OutcomePartial   = "partial"
	OutcomeFailed    = "failed"
	OutcomeNothing   = "nothing" // no target
)

// completedEvent is the payload of rule.completed.v1.
type completedEvent struct {
	// Fired is the version of the rule.fired.v1 event it completes.
	Fired   uint64     `json:"fired"`
	Outcome string     `json:"outcome"`
	Results []OpResult `json:"results,omitempty"`
	Error   string     `json:"error,omitempty"`
}

// Operation is one c2.Service call a fire makes (or, in a dry run, would
// make). It names clients and topics, never keys.
type Operation struct {
	// Op is the section-9 operation name: new_topic, new_client_key,
	// reset_client, remove_topic_client, send_client_pubkey, new_c2_key.
	Op     string `json:"op"`
	Topic  string `json:"topic,omitempty"`
	Client string `json:"client,omitempty"` // the client, or dst of send_client_pubkey
	Source string `json:"source,omitempty"` // src of send_client_pubkey
}

// String returns a short human form.
func (o Operation) String() string {
	s := o.Op
	if o.Client != "" {
		s += " client=" + o.Client
	}
	if o.Source != "" {
		s += " source=" + o.Source
	}
	if o.Topic != "" {
		s += " topic=" + o.Topic
	}
	return s
}

// OpResult is the outcome of one Operation.
type OpResult struct {
	Operation
	Error  string   `json:"error,omitempty"`
	Events []string `json:"events,omitempty"` // ids of the events appended
}

func encodePayload(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("automation: encode: %w", err)
	}
	return b, nil
}

func decodePayload(wireType string, data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("automation: decode %s: %w: %w", wireType, ErrInvalidEvent, err)
	}
	return nil
}
