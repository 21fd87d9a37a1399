package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	nethttp "net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/e4c2/e4c2/automation"
	httpapi "github.com/e4c2/e4c2/transport/http"
)

var errNoRules = &statusError{nethttp.StatusNotImplemented, "this server runs no automation engine"}

// actionTypes are the rule actions, for the form's select.
var actionTypes = []string{"rotate_topic", "rotate_client_key", "reset_client", "detach_client", "share_pubkeys", "rotate_c2_key"}

// rules lists the automation rules.
func (c *Console) rules(q *req) error {
	if c.cfg.Rules == nil {
		return errNoRules
	}
	rs, err := c.cfg.Rules.Rules(q.r.Context())
	if err != nil {
		return err
	}
	return c.render(q, "rules", "Rules", rs)
}

// ruleForm is the create/edit form, with the compile error's position.
type ruleForm struct {
	Existing     bool
	ID, Desc     string
	TriggerKind  string // event, every, cron
	Trigger      string
	Targets      string
	Action       string
	ActionTopic  string
	ActionTypes  []string
	Error        string
	ErrField     string
	ErrLine      int
	ErrColumn    int
	ErrExcerpt   string // the line in error with a caret under the column
	Plan         *automation.Plan
	Samples      []httpapi.AuditEntry
	SamplePos    string
	SampleDetail string
}

func formOf(r automation.Rule) ruleForm {
	f := ruleForm{Existing: true, ID: r.ID, Desc: r.Spec.Description, Targets: r.Spec.Targets,
		Action: r.Spec.Action.Type, ActionTopic: r.Spec.Action.Topic}
	switch {
	case r.Spec.Trigger.Every != 0:
		f.TriggerKind, f.Trigger = "every", time.Duration(r.Spec.Trigger.Every).String()
	case r.Spec.Trigger.Cron != "":
		f.TriggerKind, f.Trigger = "cron", r.Spec.Trigger.Cron
	default:
		f.TriggerKind, f.Trigger = "event", r.Spec.Trigger.Event
	}
	return f
}

// fieldText is the text of a form field named as a compile error names it.
func (f ruleForm) fieldText(field string) string {
	switch field {
	case "trigger.event":
		return f.Trigger
	case "targets":
		return f.Targets
	case "action.topic":
		return f.ActionTopic
	}
	return ""
}

// excerpt is line (1-based) of text with a caret under column (0-based,
// in runes), or "" when the position is not in the text.
func excerpt(text string, line, column int) string {
	lines := strings.Split(text, "\n")
	if line < 1 || line > len(lines) {
		return ""
	}
	l := strings.TrimRight(lines[line-1], "\r")
	if column < 0 || column > len([]rune(l)) {
		return ""
	}
	return l + "\n" + strings.Repeat(" ", column) + "^"
}

// spec builds a rule spec from the form.
func (f ruleForm) spec() (automation.Spec, error) {
	s := automation.Spec{ID: f.ID, Description: f.Desc, Targets: f.Targets,
		Action: automation.Action{Type: f.Action, Topic: f.ActionTopic}}
	switch f.TriggerKind {
	case "every":
		d, err := time.ParseDuration(f.Trigger)
		if err != nil {
			return s, fmt.Errorf("period %q: %w", f.Trigger, err)
		}
		s.Trigger.Every = automation.Duration(d)
	case "cron":
		s.Trigger.Cron = f.Trigger
	default:
		s.Trigger.Event = f.Trigger
	}
	return s, nil
}

type ruleData struct {
	Rule  automation.Rule
	Form  ruleForm
	Fires []httpapi.AuditEntry
}

// rule is one rule: its spec, status, fire history, the edit form and
// the dry run.
func (c *Console) rule(q *req) error {
	if c.cfg.Rules == nil {
		return errNoRules
	}
	r, err := c.cfg.Rules.Rule(q.r.Context(), q.query("id"))
	if err != nil {
		return err
	}
	return c.showRule(q, r, formOf(r), nethttp.StatusOK)
}

func (c *Console) showRule(q *req, r automation.Rule, f ruleForm, status int) error {
	ctx := q.r.Context()
	d := ruleData{Rule: r, Form: f}
	d.Form.ActionTypes = actionTypes
	// Fires and their outcomes, newest first.
	for _, typ := range []string{"rule.fired.v1", "rule.completed.v1"} {
		es, err := c.auditTail(ctx, httpapi.AuditQuery{Type: typ}, 1000)
		if err != nil {
			return err
		}
		for _, e := range es {
			if e.Stream == automation.StreamPrefix+r.ID {
				d.Fires = append(d.Fires, e)
			}
		}
	}
	slices.SortFunc(d.Fires, func(a, b httpapi.AuditEntry) int { return cmp.Compare(b.Position, a.Position) })
	d.Fires = d.Fires[:min(len(d.Fires), 2*pageSize)]
	var err error
	if d.Form.Samples, err = c.auditTail(ctx, httpapi.AuditQuery{}, 30); err != nil {
		return err
	}
	c.renderStatus(q, status, "rule", "Rule "+r.ID, d)
	return nil
}

// ruleFormPage is the form of a new rule.
func (c *Console) ruleForm(q *req) error {
	if c.cfg.Rules == nil {
		return errNoRules
	}
	return c.showNewRule(q, ruleForm{TriggerKind: "event", Action: "rotate_topic"}, nethttp.StatusOK)
}

func (c *Console) showNewRule(q *req, f ruleForm, status int) error {
	f.ActionTypes = actionTypes
	samples, err := c.auditTail(q.r.Context(), httpapi.AuditQuery{}, 30)
	if err != nil {
		return err
	}
	f.Samples = samples
	c.renderStatus(q, status, "rulenew", "New rule", ruleData{Form: f})
	return nil
}

func readRuleForm(q *req) ruleForm {
	return ruleForm{Existing: q.form("existing") == "yes", ID: q.form("id"), Desc: q.form("description"),
		TriggerKind: q.form("trigger_kind"), Trigger: strings.TrimSpace(q.r.PostFormValue("trigger")),
		Targets: strings.TrimSpace(q.r.PostFormValue("targets")), Action: q.form("action"),
		ActionTopic: q.form("action_topic"), SamplePos: q.form("sample")}
}

// saveRule creates or updates a rule, or dry-runs the form (op=dryrun).
// A compile error shows the form again with the field, line and column.
func (c *Console) saveRule(q *req) error {
	if c.cfg.Rules == nil {
		return errNoRules
	}
	ctx := q.r.Context()
	f := readRuleForm(q)
	again := func(err error) error {
		f.Error = err.Error()
		var ce *automation.CompileError
		if errors.As(err, &ce) {
			f.ErrField, f.ErrLine, f.ErrColumn = ce.Field, ce.Line, ce.Column
			f.Error = ce.Message
			f.ErrExcerpt = excerpt(f.fieldText(ce.Field), ce.Line, ce.Column)
		}
		return c.showForm(q, f, nethttp.StatusUnprocessableEntity)
	}
	spec, err := f.spec()
	if err != nil {
		return again(err)
	}
	if q.form("op") == "dryrun" {
		sample, err := c.sampleEvent(ctx, f.SamplePos)
		if err != nil {
			return again(err)
		}
		plan, err := c.cfg.Rules.DryRun(ctx, spec, sample)
		if err != nil {
			return again(err)
		}
		f.Plan = &plan
		return c.showForm(q, f, nethttp.StatusOK)
	}
	var r automation.Rule
	if f.Existing {
		r, err = c.cfg.Rules.UpdateRule(ctx, q.caller(), f.ID, spec)
	} else {
		r, err = c.cfg.Rules.CreateRule(ctx, q.caller(), spec)
	}
	if err != nil {
		return again(err)
	}
	return q.done(Prefix+"rule?id="+url.QueryEscape(r.ID), "rule "+r.ID+" saved")
}

// showForm shows the form again: on the rule's page for an existing
// rule, else on the new-rule page.
func (c *Console) showForm(q *req, f ruleForm, status int) error {
	if f.Existing {
		r, err := c.cfg.Rules.Rule(q.r.Context(), f.ID)
		if err != nil {
			return err
		}
		return c.showRule(q, r, f, status)
	}
	return c.showNewRule(q, f, status)
}

// sampleEvent turns a past event (by global position) into the event a
// rule expression sees.
func (c *Console) sampleEvent(ctx context.Context, pos string) (*automation.Event, error) {
	if pos == "" {
		return nil, nil
	}
	p, err := strconv.ParseUint(pos, 10, 64)
	if err != nil || p == 0 {
		return nil, fmt.Errorf("sample event %q: not a position", pos)
	}
	pg, err := c.api.Audit(ctx, httpapi.AuditQuery{Page: httpapi.PageRequest{Cursor: strconv.FormatUint(p-1, 10), Limit: 1}})
	if err != nil {
		return nil, err
	}
	if len(pg.Items) == 0 || pg.Items[0].Position != p {
		return nil, fmt.Errorf("sample event: no event at position %d in the audit", p)
	}
	e := pg.Items[0]
	client := e.Client
	if client == "" {
		client = e.ClientID
	}
	return &automation.Event{Type: e.Type, ID: e.EventID, Stream: e.Stream, Position: int(e.Position),
		Client: client, ClientID: e.ClientID, Topic: e.Topic, TopicHash: e.TopicHash, Command: e.Command,
		Recipients: e.Recipients, Actor: e.Actor, CausationID: e.CausationID, CorrelationID: e.CorrelationID,
		Time: e.Time}, nil
}

// dryRun evaluates an existing rule against a chosen past event.
func (c *Console) dryRun(q *req) error {
	if c.cfg.Rules == nil {
		return errNoRules
	}
	ctx := q.r.Context()
	r, err := c.cfg.Rules.Rule(ctx, q.form("id"))
	if err != nil {
		return err
	}
	f := formOf(r)
	f.SamplePos = q.form("sample")
	sample, err := c.sampleEvent(ctx, f.SamplePos)
	if err == nil {
		var plan automation.Plan
		if plan, err = c.cfg.Rules.DryRunRule(ctx, r.ID, sample); err == nil {
			f.Plan = &plan
		}
	}
	if err != nil {
		f.Error = err.Error()
	}
	return c.showRule(q, r, f, nethttp.StatusOK)
}

// ruleAction pauses or resumes a rule.
func (c *Console) ruleAction(q *req) error {
	if c.cfg.Rules == nil {
		return errNoRules
	}
	ctx := q.r.Context()
	id := q.form("id")
	back := Prefix + "rule?id=" + url.QueryEscape(id)
	var err error
	msg := "rule " + id + " "
	switch strings.TrimPrefix(q.r.URL.Path, Prefix) {
	case "rule/pause":
		_, err = c.cfg.Rules.PauseRule(ctx, q.caller(), id, q.form("reason"))
		msg += "paused"
	case "rule/resume":
		_, err = c.cfg.Rules.ResumeRule(ctx, q.caller(), id)
		msg += "resumed"
	}
	if err != nil {
		return q.failed(back, err)
	}
	return q.done(back, msg)
}
