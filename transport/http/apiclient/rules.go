package apiclient

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Rule is an automation rule as the API shows it. Spec is kept as the
// server wrote it (see automation/RULES.md for its fields), so printing it
// back loses nothing.
type Rule struct {
	ID          string          `json:"id"`
	Spec        json.RawMessage `json:"spec"`
	Status      string          `json:"status"`
	Reason      string          `json:"reason,omitempty"`
	Version     uint64          `json:"version"`
	Created     time.Time       `json:"created"`
	CreatedBy   string          `json:"created_by"`
	Updated     time.Time       `json:"updated"`
	Fires       int             `json:"fires"`
	LastFired   time.Time       `json:"last_fired,omitzero"`
	LastOutcome string          `json:"last_outcome,omitempty"`
	NextFire    time.Time       `json:"next_fire,omitzero"`
}

// RuleOperation is one C2 operation a rule would make (dry run). It names
// clients and topics, never keys.
type RuleOperation struct {
	Op     string `json:"op"`
	Topic  string `json:"topic,omitempty"`
	Client string `json:"client,omitempty"`
	Source string `json:"source,omitempty"`
}

// RulePlan is the answer to a dry run: what the rule would do now.
type RulePlan struct {
	Rule       string          `json:"rule"`
	Trigger    string          `json:"trigger"`
	Matched    *bool           `json:"matched,omitempty"`
	NextFire   time.Time       `json:"next_fire,omitzero"`
	Targets    []string        `json:"targets"`
	Operations []RuleOperation `json:"operations"`
	Error      string          `json:"error,omitempty"`
}

// CreateRule creates a rule from its JSON spec.
func (c *Client) CreateRule(ctx context.Context, spec json.RawMessage) (Rule, error) {
	var out Rule
	err := c.do(ctx, http.MethodPost, Prefix+"/rules", nil, spec, &out)
	return out, err
}

// ListRules returns every rule not deleted.
func (c *Client) ListRules(ctx context.Context) ([]Rule, error) {
	var out struct {
		Items []Rule `json:"items"`
	}
	err := c.do(ctx, http.MethodGet, Prefix+"/rules", nil, nil, &out)
	return out.Items, err
}

// GetRule returns one rule.
func (c *Client) GetRule(ctx context.Context, id string) (Rule, error) {
	var out Rule
	err := c.do(ctx, http.MethodGet, Prefix+"/rules/"+esc(id), nil, nil, &out)
	return out, err
}

// UpdateRule replaces a rule's spec; its status is kept.
func (c *Client) UpdateRule(ctx context.Context, id string, spec json.RawMessage) (Rule, error) {
	var out Rule
	err := c.do(ctx, http.MethodPut, Prefix+"/rules/"+esc(id), nil, spec, &out)
	return out, err
}

// PauseRule pauses a rule; reason (optional, recorded) says why.
func (c *Client) PauseRule(ctx context.Context, id, reason string) (Rule, error) {
	var out Rule
	body := struct {
		Reason string `json:"reason,omitempty"`
	}{reason}
	err := c.do(ctx, http.MethodPost, Prefix+"/rules/"+esc(id)+"/pause", nil, body, &out)
	return out, err
}

// ResumeRule makes a paused or stopped rule active again.
func (c *Client) ResumeRule(ctx context.Context, id string) (Rule, error) {
	var out Rule
	err := c.do(ctx, http.MethodPost, Prefix+"/rules/"+esc(id)+"/resume", nil, nil, &out)
	return out, err
}

// DeleteRule deletes a rule (its events stay; its id is never reused).
func (c *Client) DeleteRule(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, Prefix+"/rules/"+esc(id), nil, nil, nil)
}

// DryRunSpec shows what a spec would do now, without acting; event (may
// be nil) is a sample event for an event rule.
func (c *Client) DryRunSpec(ctx context.Context, spec, event json.RawMessage) (RulePlan, error) {
	var out RulePlan
	body := struct {
		Spec  json.RawMessage `json:"spec"`
		Event json.RawMessage `json:"event,omitempty"`
	}{spec, event}
	err := c.do(ctx, http.MethodPost, Prefix+"/rules/dry-run", nil, body, &out)
	return out, err
}

// DryRunRule shows what an existing rule would do now, without acting.
func (c *Client) DryRunRule(ctx context.Context, id string, event json.RawMessage) (RulePlan, error) {
	var out RulePlan
	body := struct {
		Event json.RawMessage `json:"event,omitempty"`
	}{event}
	err := c.do(ctx, http.MethodPost, Prefix+"/rules/"+esc(id)+"/dry-run", nil, body, &out)
	return out, err
}
