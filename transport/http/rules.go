package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"regexp"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/e4c2/e4c2/automation"
	"github.com/e4c2/e4c2/transport/http/apitypes"
)

// RuleBackend is what the rule routes need of the automation engine. It is
// separate from Backend because the engine is optional: a Server built
// without one (Config.Rules nil) still registers and documents the rule
// routes, and they answer 501 with the code "rules_unavailable", so a
// client can tell "this server runs no engine" from "no such rule" (404).
//
// Mutating calls receive the Caller so rule events are attributed to the
// token and correlated with the request, like every other operation.
type RuleBackend interface {
	CreateRule(ctx context.Context, by Caller, spec automation.Spec) (automation.Rule, error)
	Rules(ctx context.Context) ([]automation.Rule, error)
	Rule(ctx context.Context, id string) (automation.Rule, error)
	UpdateRule(ctx context.Context, by Caller, id string, spec automation.Spec) (automation.Rule, error)
	PauseRule(ctx context.Context, by Caller, id, reason string) (automation.Rule, error)
	ResumeRule(ctx context.Context, by Caller, id string) (automation.Rule, error)
	DeleteRule(ctx context.Context, by Caller, id string) error
	// DryRun and DryRunRule compute what a rule would do now, without
	// acting or recording anything; sample is the event an event rule is
	// evaluated against (nil: none).
	DryRun(ctx context.Context, spec automation.Spec, sample *automation.Event) (automation.Plan, error)
	DryRunRule(ctx context.Context, id string, sample *automation.Event) (automation.Plan, error)
}

// EngineRules adapts *automation.Engine to RuleBackend. It holds no state.
type EngineRules struct {
	e *automation.Engine
}

// NewEngineRules wraps an engine; the composition root passes the result
// as Config.Rules.
func NewEngineRules(e *automation.Engine) *EngineRules { return &EngineRules{e: e} }

var _ RuleBackend = (*EngineRules)(nil)

// CreateRule implements RuleBackend.
func (r *EngineRules) CreateRule(ctx context.Context, by Caller, spec automation.Spec) (automation.Rule, error) {
	return r.e.CreateRule(ctx, origin(by), spec)
}

// Rules implements RuleBackend.
func (r *EngineRules) Rules(ctx context.Context) ([]automation.Rule, error) {
	return r.e.ListRules(ctx)
}

// Rule implements RuleBackend.
func (r *EngineRules) Rule(ctx context.Context, id string) (automation.Rule, error) {
	return r.e.GetRule(ctx, id)
}

// UpdateRule implements RuleBackend.
func (r *EngineRules) UpdateRule(ctx context.Context, by Caller, id string, spec automation.Spec) (automation.Rule, error) {
	return r.e.UpdateRule(ctx, origin(by), id, spec)
}

// PauseRule implements RuleBackend.
func (r *EngineRules) PauseRule(ctx context.Context, by Caller, id, reason string) (automation.Rule, error) {
	return r.e.PauseRule(ctx, origin(by), id, reason)
}

// ResumeRule implements RuleBackend.
func (r *EngineRules) ResumeRule(ctx context.Context, by Caller, id string) (automation.Rule, error) {
	return r.e.ResumeRule(ctx, origin(by), id)
}

// DeleteRule implements RuleBackend.
func (r *EngineRules) DeleteRule(ctx context.Context, by Caller, id string) error {
	return r.e.DeleteRule(ctx, origin(by), id)
}

// DryRun implements RuleBackend.
func (r *EngineRules) DryRun(ctx context.Context, spec automation.Spec, sample *automation.Event) (automation.Plan, error) {
	return r.e.DryRun(ctx, spec, sample)
}

// DryRunRule implements RuleBackend.
func (r *EngineRules) DryRunRule(ctx context.Context, id string, sample *automation.Event) (automation.Plan, error) {
	return r.e.DryRunRule(ctx, id, sample)
}

// errRulesUnavailable answers every rule route of a server without engine.
var errRulesUnavailable = &apiError{status: nethttp.StatusNotImplemented, code: "rules_unavailable",
	msg: "this server runs no automation engine"}

// ruleRoutes are the rule entries of the route table. Reading and dry runs
// (which only read) need a reader; changes need an operator.
func (s *Server) ruleRoutes() []route {
	const (
		get, post, put, del = nethttp.MethodGet, nethttp.MethodPost, nethttp.MethodPut, nethttp.MethodDelete
		ok, created, none   = nethttp.StatusOK, nethttp.StatusCreated, nethttp.StatusNoContent
	)
	p := func(path string) string { return apiPrefix + path }
	return []route{
		{method: post, path: p("/rules"), role: RoleOperator, id: "createRule", summary: "Create an automation rule (compiled now; a compile error is a 400 with its position)", body: "RuleSpec", resp: "Rule", status: created, handler: s.createRule},
		{method: get, path: p("/rules"), role: RoleReader, id: "listRules", summary: "List automation rules", resp: "RuleList", status: ok, handler: s.listRules},
		{method: post, path: p("/rules/dry-run"), role: RoleReader, id: "dryRunSpec", summary: "What a rule spec would do now (targets, operations), without acting or recording anything", body: "DryRunRequest", resp: "RulePlan", status: ok, handler: s.dryRunSpec},
		{method: get, path: p("/rules/:rule"), role: RoleReader, id: "getRule", summary: "Get an automation rule", resp: "Rule", status: ok, handler: s.getRule},
		{method: put, path: p("/rules/:rule"), role: RoleOperator, id: "updateRule", summary: "Replace a rule's spec (status kept)", body: "RuleSpec", resp: "Rule", status: ok, handler: s.updateRule},
		{method: del, path: p("/rules/:rule"), role: RoleOperator, id: "deleteRule", summary: "Delete a rule (its events stay; its id is never reused)", status: none, handler: s.deleteRule},
		{method: post, path: p("/rules/:rule/pause"), role: RoleOperator, id: "pauseRule", summary: "Pause a rule (optional body: reason)", body: "PauseRule", optBody: true, resp: "Rule", status: ok, handler: s.pauseRule},
		{method: post, path: p("/rules/:rule/resume"), role: RoleOperator, id: "resumeRule", summary: "Resume a paused or stopped rule", resp: "Rule", status: ok, handler: s.resumeRule},
		{method: post, path: p("/rules/:rule/dry-run"), role: RoleReader, id: "dryRunRule", summary: "What an existing rule would do now (optional body: sample event)", body: "DryRunEvent", optBody: true, resp: "RulePlan", status: ok, handler: s.dryRunRule},
	}
}

// rules returns the engine or the 501 error.
func (s *Server) rules() (RuleBackend, error) {
	if s.cfg.Rules == nil {
		return nil, errRulesUnavailable
	}
	return s.cfg.Rules, nil
}

// ruleIDSyntax mirrors the automation package's rule id syntax: an id
// that cannot exist is a 404 before any store read.
var ruleIDSyntax = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

func ruleParam(c echo.Context) (string, error) {
	id, err := pathParam(c, "rule")
	if err != nil {
		return "", err
	}
	if !ruleIDSyntax.MatchString(id) {
		return "", fmt.Errorf("http: rule %q: %w", id, automation.ErrUnknownRule)
	}
	return id, nil
}

// bindOptional decodes a JSON body into v when there is one; an empty body
// leaves v as it is.
func (s *Server) bindOptional(c echo.Context, v any) error {
	b, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var mbe *nethttp.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("invalid_body", "reading the request body failed")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	return decodeJSON(bytes.NewReader(b), v)
}

// sampleEvent is the JSON form of a sample event for a dry run: the fields
// rule expressions see as event.*, under the same names.
type sampleEvent struct {
	Type        string    `json:"type"`
	ID          string    `json:"id"`
	Stream      string    `json:"stream"`
	Position    int       `json:"position"`
	Client      string    `json:"client"`
	ClientID    string    `json:"client_id"`
	Topic       string    `json:"topic"`
	TopicHash   string    `json:"topic_hash"`
	Role        string    `json:"role"`
	Command     string    `json:"command"`
	Recipients  int       `json:"recipients"`
	Reason      string    `json:"reason"`
	Actor       string    `json:"actor"`
	Causation   string    `json:"causation"`
	Correlation string    `json:"correlation"`
	Time        time.Time `json:"time"`
	Depth       int       `json:"depth"`
}

func (e *sampleEvent) toEvent() *automation.Event {
	if e == nil {
		return nil
	}
	return &automation.Event{Type: e.Type, ID: e.ID, Stream: e.Stream, Position: e.Position,
		Client: e.Client, ClientID: e.ClientID, Topic: e.Topic, TopicHash: e.TopicHash, Role: e.Role,
		Command: e.Command, Recipients: e.Recipients, Reason: e.Reason, Actor: e.Actor,
		CausationID: e.Causation, CorrelationID: e.Correlation, Time: e.Time, Depth: e.Depth}
}

// dryRunBody is the body of POST /rules/dry-run (spec required) and of
// POST /rules/:rule/dry-run (event only, optional).
type dryRunBody struct {
	Spec  *automation.Spec `json:"spec,omitempty"`
	Event *sampleEvent     `json:"event,omitempty"`
}

type dryRunEventBody struct {
	Event *sampleEvent `json:"event,omitempty"`
}

// apiRule is the API's view of a rule: automation's rule state with its
// spec as JSON (the client keeps it raw, so it prints back every field).
func apiRule(r automation.Rule) (apitypes.Rule, error) {
	spec, err := json.Marshal(r.Spec)
	if err != nil {
		return apitypes.Rule{}, fmt.Errorf("http: rule %q: spec: %w", r.ID, err)
	}
	return apitypes.Rule{ID: r.ID, Spec: spec, Status: r.Status, Reason: r.Reason, Version: r.Version,
		Created: r.Created, CreatedBy: r.CreatedBy, Updated: r.Updated, Fires: r.Fires,
		LastFired: r.LastFired, LastOutcome: r.LastOutcome, NextFire: r.NextFire}, nil
}

// ruleAnswer converts what a rule operation returned, passing its error on.
func ruleAnswer(r automation.Rule, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return apiRule(r)
}

// apiPlan is the API's view of a dry run.
func apiPlan(p automation.Plan) apitypes.RulePlan {
	out := apitypes.RulePlan{Rule: p.Rule, Trigger: p.Trigger, Matched: p.Matched, NextFire: p.NextFire,
		Targets: p.Targets, Operations: make([]apitypes.RuleOperation, len(p.Operations)), Error: p.Error}
	for i, o := range p.Operations {
		out.Operations[i] = apitypes.RuleOperation{Op: o.Op, Topic: o.Topic, Client: o.Client, Source: o.Source}
	}
	return out
}

// planAnswer converts what a dry run returned, passing its error on.
func planAnswer(p automation.Plan, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return apiPlan(p), nil
}

func (s *Server) createRule(c echo.Context) error {
	rb, err := s.rules()
	if err != nil {
		return err
	}
	var spec automation.Spec
	if err := s.bind(c, &spec); err != nil {
		return err
	}
	r, err := ruleAnswer(rb.CreateRule(c.Request().Context(), caller(c), spec))
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusCreated, r)
}

func (s *Server) listRules(c echo.Context) error {
	rb, err := s.rules()
	if err != nil {
		return err
	}
	rs, err := rb.Rules(c.Request().Context())
	if err != nil {
		return err
	}
	list := apitypes.RuleList{Items: make([]apitypes.Rule, len(rs))}
	for i, r := range rs {
		if list.Items[i], err = apiRule(r); err != nil {
			return err
		}
	}
	return c.JSON(nethttp.StatusOK, list)
}

// ruleOp runs op on the rule the path names and answers its result as JSON
// (204 when op returns nil).
func (s *Server) ruleOp(c echo.Context, op func(ctx context.Context, rb RuleBackend, id string) (any, error)) error {
	rb, err := s.rules()
	if err != nil {
		return err
	}
	id, err := ruleParam(c)
	if err != nil {
		return err
	}
	v, err := op(c.Request().Context(), rb, id)
	if err != nil {
		return err
	}
	if v == nil {
		return c.NoContent(nethttp.StatusNoContent)
	}
	return c.JSON(nethttp.StatusOK, v)
}

func (s *Server) getRule(c echo.Context) error {
	return s.ruleOp(c, func(ctx context.Context, rb RuleBackend, id string) (any, error) {
		return ruleAnswer(rb.Rule(ctx, id))
	})
}

func (s *Server) updateRule(c echo.Context) error {
	return s.ruleOp(c, func(ctx context.Context, rb RuleBackend, id string) (any, error) {
		var spec automation.Spec
		if err := s.bind(c, &spec); err != nil {
			return nil, err
		}
		return ruleAnswer(rb.UpdateRule(ctx, caller(c), id, spec))
	})
}

func (s *Server) deleteRule(c echo.Context) error {
	return s.ruleOp(c, func(ctx context.Context, rb RuleBackend, id string) (any, error) {
		return nil, rb.DeleteRule(ctx, caller(c), id)
	})
}

func (s *Server) pauseRule(c echo.Context) error {
	return s.ruleOp(c, func(ctx context.Context, rb RuleBackend, id string) (any, error) {
		var b apitypes.PauseRule
		if err := s.bindOptional(c, &b); err != nil {
			return nil, err
		}
		return ruleAnswer(rb.PauseRule(ctx, caller(c), id, b.Reason))
	})
}

func (s *Server) resumeRule(c echo.Context) error {
	return s.ruleOp(c, func(ctx context.Context, rb RuleBackend, id string) (any, error) {
		return ruleAnswer(rb.ResumeRule(ctx, caller(c), id))
	})
}

func (s *Server) dryRunSpec(c echo.Context) error {
	rb, err := s.rules()
	if err != nil {
		return err
	}
	var b dryRunBody
	if err := s.bind(c, &b); err != nil {
		return err
	}
	if b.Spec == nil {
		return badRequest("invalid_rule", "spec is required")
	}
	p, err := planAnswer(rb.DryRun(c.Request().Context(), *b.Spec, b.Event.toEvent()))
	if err != nil {
		return err
	}
	return c.JSON(nethttp.StatusOK, p)
}

func (s *Server) dryRunRule(c echo.Context) error {
	return s.ruleOp(c, func(ctx context.Context, rb RuleBackend, id string) (any, error) {
		var b dryRunEventBody
		if err := s.bindOptional(c, &b); err != nil {
			return nil, err
		}
		return planAnswer(rb.DryRunRule(ctx, id, b.Event.toEvent()))
	})
}

// compileErrorDetails is the "details" object of a rule whose expression
// does not compile: where the author must look.
type compileErrorDetails struct {
	Field  string `json:"field"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
}

// errorDetails returns the structured details of an error, if it has any.
func errorDetails(err error) any {
	var ce *automation.CompileError
	if errors.As(err, &ce) {
		return compileErrorDetails{Field: ce.Field, Line: ce.Line, Column: ce.Column}
	}
	return nil
}

// ruleSchemas are the OpenAPI schemas of the rule routes (RULES.md is the
// full reference of the spec).
func ruleSchemas() obj {
	tm := obj{"type": "string", "format": "date-time"}
	integer := obj{"type": "integer"}
	dur := str("Go duration, e.g. 90s, 24h")
	spec := object([]string{"trigger", "action"}, obj{
		"id":          str("1-64 of a-z 0-9 - _ (generated when empty)"),
		"description": str("free text"),
		"trigger": object(nil, obj{
			"event": str("boolean expr expression over event, now, mode, clients, topics"), "min_interval": dur,
			"every": dur, "cron": str("5-field cron expression (UTC)"),
			"catch_up":       obj{"type": "string", "enum": []string{"skip", "once"}},
			"fire_on_create": obj{"type": "boolean"},
		}),
		"targets": str("expression returning the clients or topics acted on"),
		"action": object([]string{"type"}, obj{
			"type": obj{"type": "string", "enum": []string{automation.ActionRotateTopic, automation.ActionRotateClientKey,
				automation.ActionResetClient, automation.ActionDetachClient, automation.ActionSharePubKeys, automation.ActionRotateC2Key}},
			"topic": str("detach_client: topic expression"),
			"pairs": obj{"type": "string", "enum": []string{automation.PairsAll, automation.PairsEventClient}},
		}),
		"rate_limit":  object([]string{"max", "per"}, obj{"max": integer, "per": dur}),
		"max_targets": integer,
	})
	event := object(nil, obj{
		"type": str("wire type, e.g. topic.client_linked.v1"), "id": str("event id"), "stream": str("stream"), "position": integer,
		"client": str("client name"), "client_id": str("client id, hex"), "topic": str("topic name"), "topic_hash": str("hex"),
		"role": str("client role"), "command": str("command name"), "recipients": integer, "reason": str("failure reason"),
		"actor": str("actor"), "causation": str("causation id"), "correlation": str("correlation id"), "time": tm, "depth": integer,
	})
	rule := object([]string{"id", "spec", "status", "version", "created", "created_by", "updated", "fires"}, obj{
		"id": str("rule id"), "spec": ref("RuleSpec"),
		"status":  obj{"type": "string", "enum": []string{automation.StatusActive, automation.StatusPaused, automation.StatusStopped}},
		"reason":  str("reason of the last pause or stop"),
		"version": integer, "created": tm, "created_by": str("actor"), "updated": tm,
		"fires": integer, "last_fired": tm, "last_outcome": str("outcome of the last completed fire"), "next_fire": tm,
	})
	op := object([]string{"op"}, obj{"op": str("operation name, e.g. new_topic"), "topic": str("topic"),
		"client": str("client (dst of send_client_pubkey)"), "source": str("src of send_client_pubkey")})
	return obj{
		"RuleSpec":      spec,
		"Rule":          rule,
		"RuleList":      object([]string{"items"}, obj{"items": obj{"type": "array", "items": ref("Rule")}}),
		"SampleEvent":   event,
		"DryRunRequest": object([]string{"spec"}, obj{"spec": ref("RuleSpec"), "event": ref("SampleEvent")}),
		"DryRunEvent":   object(nil, obj{"event": ref("SampleEvent")}),
		"PauseRule":     object(nil, obj{"reason": str("why (recorded; no secrets)")}),
		"RulePlan": object([]string{"rule", "trigger", "targets", "operations"}, obj{
			"rule": str("rule id"), "trigger": str("event or schedule"),
			"matched":    obj{"type": "boolean", "description": "condition result on the sample event"},
			"next_fire":  tm,
			"targets":    obj{"type": "array", "items": obj{"type": "string"}},
			"operations": obj{"type": "array", "items": op},
			"error":      str("evaluation error (a fire would record it as failed)"),
		}),
	}
}
