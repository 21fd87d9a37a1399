package apitypes

import (
	"encoding/json"
	"time"
)

// Rule is an automation rule as the API shows it. Spec is the rule's spec
// as the server wrote it (schema RuleSpec; see automation/RULES.md), kept
// raw so that a client prints it back without losing a field it does not
// know.
type Rule struct {
	ID        string          `json:"id"`
	Spec      json.RawMessage `json:"spec"`
	Status    string          `json:"status"` // active, paused or stopped
	Reason    string          `json:"reason,omitempty"`
	Version   uint64          `json:"version"`
	Created   time.Time       `json:"created"`
	CreatedBy string          `json:"created_by"`
	Updated   time.Time       `json:"updated"`
	// Fires counts the fires; LastOutcome is the outcome of the last
	// completed one.
	Fires       int       `json:"fires"`
	LastFired   time.Time `json:"last_fired,omitzero"`
	LastOutcome string    `json:"last_outcome,omitempty"`
	NextFire    time.Time `json:"next_fire,omitzero"` // scheduled rules
}

// RuleList is the answer of the rule list.
type RuleList struct {
	Items []Rule `json:"items"`
}

// PauseRule is the optional body of a pause: why (recorded; no secrets).
type PauseRule struct {
	Reason string `json:"reason,omitempty"`
}

// DryRunRequest is the body of a dry run of a spec not yet created; Event
// (schema SampleEvent) is the event an event rule is evaluated against.
type DryRunRequest struct {
	Spec  json.RawMessage `json:"spec"`
	Event json.RawMessage `json:"event,omitempty"`
}

// DryRunEvent is the optional body of a dry run of an existing rule.
type DryRunEvent struct {
	Event json.RawMessage `json:"event,omitempty"`
}

// RuleOperation is one C2 operation a rule would make (dry run). It names
// clients and topics, never keys.
type RuleOperation struct {
	Op     string `json:"op"`
	Topic  string `json:"topic,omitempty"`
	Client string `json:"client,omitempty"` // the client, or dst of send_client_pubkey
	Source string `json:"source,omitempty"` // src of send_client_pubkey
}

// RulePlan is the answer to a dry run: what the rule would do now.
type RulePlan struct {
	Rule    string `json:"rule"`
	Trigger string `json:"trigger"` // event or schedule
	// Matched is the condition's result on the sample event (event rules
	// given a sample); absent otherwise.
	Matched    *bool           `json:"matched,omitempty"`
	NextFire   time.Time       `json:"next_fire,omitzero"`
	Targets    []string        `json:"targets"`
	Operations []RuleOperation `json:"operations"`
	// Error is an evaluation error (a fire would record it as failed).
	Error string `json:"error,omitempty"`
}
