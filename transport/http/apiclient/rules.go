package apiclient

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/e4c2/e4c2/transport/http/apitypes"
)

// CreateRule creates a rule from its JSON spec.
func (c *Client) CreateRule(ctx context.Context, spec json.RawMessage) (Rule, error) {
	var out Rule
	err := c.do(ctx, http.MethodPost, Prefix+"/rules", nil, spec, &out)
	return out, err
}

// ListRules returns every rule not deleted.
func (c *Client) ListRules(ctx context.Context) ([]Rule, error) {
	var out apitypes.RuleList
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
	body := apitypes.PauseRule{Reason: reason}
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
	body := apitypes.DryRunRequest{Spec: spec, Event: event}
	err := c.do(ctx, http.MethodPost, Prefix+"/rules/dry-run", nil, body, &out)
	return out, err
}

// DryRunRule shows what an existing rule would do now, without acting.
func (c *Client) DryRunRule(ctx context.Context, id string, event json.RawMessage) (RulePlan, error) {
	var out RulePlan
	body := apitypes.DryRunEvent{Event: event}
	err := c.do(ctx, http.MethodPost, Prefix+"/rules/"+esc(id)+"/dry-run", nil, body, &out)
	return out, err
}
