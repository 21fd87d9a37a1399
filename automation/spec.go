package automation

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/e4c2/e4c2/suites/core"
)

// Errors of the package. Every error wraps one of these, so callers (the
// HTTP error table) use errors.Is.
var (
	// ErrInvalidRule: the rule spec is refused (bad field, expression that
	// does not compile, action not valid in this mode...).
	ErrInvalidRule = errors.New("invalid rule")
	// ErrUnknownRule: no rule with that id (or it was deleted).
	ErrUnknownRule = errors.New("unknown rule")
	// ErrRuleExists: CreateRule with the id of an existing rule.
	ErrRuleExists = errors.New("rule already exists")
	// ErrInvalidEvent: a stored rule event does not decode.
	ErrInvalidEvent = errors.New("invalid rule event")
	// ErrEvaluation: an expression failed at run time (type error, memory
	// or time budget exceeded...).
	ErrEvaluation = errors.New("rule evaluation failed")
)

// Action types.
const (
	ActionRotateTopic     = "rotate_topic"      // new_topic on existing topics
	ActionRotateClientKey = "rotate_client_key" // new_client_key (SK)
	ActionResetClient     = "reset_client"      // reset_client
	ActionDetachClient    = "detach_client"     // remove_topic_client
	ActionSharePubKeys    = "share_pubkeys"     // send_client_pubkey between members (PK)
	ActionRotateC2Key     = "rotate_c2_key"     // new_c2_key (PK)
)

// Catch-up policies of scheduled rules after downtime.
const (
	CatchUpSkip = "skip" // missed periods are skipped (default)
	CatchUpOnce = "once" // one fire for all missed periods, at restart
)

// Pair policies of share_pubkeys.
const (
	PairsAll         = "all"          // every member learns every other member
	PairsEventClient = "event_client" // only pairs with the event's client
)

// Duration is a time.Duration written as a Go duration string ("90s",
// "24h") in JSON.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: duration must be a string like \"24h\"", ErrInvalidRule)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%w: duration %q: %w", ErrInvalidRule, s, err)
	}
	*d = Duration(v)
	return nil
}

// Spec is a rule as written by its author: the body of the HTTP API and the
// payload of rule.created.v1 / rule.updated.v1.
type Spec struct {
	// ID names the rule (1-64 of a-z, 0-9, '-', '_'); generated when
	// empty at creation.
	ID          string  `json:"id,omitempty"`
	Description string  `json:"description,omitempty"`
	Trigger     Trigger `json:"trigger"`
	// Targets is an expression returning the clients or topics the action
	// applies to: a list of Client / Topic (e.g. topics | filter(...)),
	// of names, or one of those. Empty: the event's topic (topic actions)
	// or client (client actions).
	Targets string `json:"targets,omitempty"`
	Action  Action `json:"action"`
	// RateLimit bounds the fires of the rule (default 10 per minute);
	// past it the rule is stopped with a recorded reason.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
	// MaxTargets bounds the targets of one fire (default 1000); a fire
	// with more fails without acting.
	MaxTargets int `json:"max_targets,omitempty"`
}

// Trigger says when a rule fires: exactly one of Event, Every and Cron.
type Trigger struct {
	// Event is a boolean expression over Env evaluated on every domain
	// event, e.g. event.type == "topic.client_linked.v1".
	Event string `json:"event,omitempty"`
	// MinInterval makes an event trigger fire at most once per interval.
	MinInterval Duration `json:"min_interval,omitempty"`
	// Every fires every period, counted from the rule's creation.
	Every Duration `json:"every,omitempty"`
	// Cron fires on a 5-field cron expression (UTC).
	Cron string `json:"cron,omitempty"`
	// CatchUp is the policy for periods missed while no engine ran:
	// "skip" (default) or "once".
	CatchUp string `json:"catch_up,omitempty"`
	// FireOnCreate fires a scheduled rule once when it is created.
	// Nothing fires on creation otherwise.
	FireOnCreate bool `json:"fire_on_create,omitempty"`
}

// Action is what a fire does to each target.
type Action struct {
	// Type is one of rotate_topic, rotate_client_key, reset_client,
	// detach_client, share_pubkeys, rotate_c2_key.
	Type string `json:"type"`
	// Topic is a string expression naming the topic of detach_client
	// (default: event.topic).
	Topic string `json:"topic,omitempty"`
	// Pairs is the share_pubkeys policy: "all" (default) or
	// "event_client".
	Pairs string `json:"pairs,omitempty"`
}

// RateLimit allows at most Max fires per Per.
type RateLimit struct {
	Max int      `json:"max"`
	Per Duration `json:"per"`
}

// CompileError is an expression that does not compile, with its position.
type CompileError struct {
	Field   string // "trigger.event", "targets" or "action.topic"
	Line    int    // 1-based
	Column  int    // 0-based, in runes, as expr reports it
	Message string
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("automation: %s: line %d, column %d: %s", e.Field, e.Line, e.Column, e.Message)
}

// Unwrap makes errors.Is(err, ErrInvalidRule) work.
func (e *CompileError) Unwrap() error { return ErrInvalidRule }

var ruleIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Limits of compilation.
const (
	defaultMaxNodes     = 2000
	defaultMemoryBudget = 200_000
	defaultMaxTargets   = 1000
	defaultRateMax      = 10
	defaultRatePer      = time.Minute
)

// compiled is a rule ready to run: its programs are compiled once.
type compiled struct {
	spec      Spec
	cond      *vm.Program
	targets   *vm.Program
	topic     *vm.Program
	needState bool // a program names clients or topics
	cron      *Cron
}

func (c *compiled) scheduled() bool { return c.cron != nil || c.spec.Trigger.Every > 0 }

func (c *compiled) rate() (int, time.Duration) {
	if c.spec.RateLimit == nil {
		return defaultRateMax, defaultRatePer
	}
	return c.spec.RateLimit.Max, time.Duration(c.spec.RateLimit.Per)
}

func (c *compiled) maxTargets() int {
	if c.spec.MaxTargets > 0 {
		return c.spec.MaxTargets
	}
	return defaultMaxTargets
}

func invalid(format string, a ...any) error {
	return fmt.Errorf("automation: %w: "+format, append([]any{ErrInvalidRule}, a...)...)
}

// compileSpec validates s and compiles its expressions for mode. The
// checks run in the order of the spec's fields, so that the error names the
// first bad one.
func compileSpec(s Spec, mode core.Mode, maxNodes uint) (*compiled, error) {
	if !ruleIDPattern.MatchString(s.ID) {
		return nil, invalid("id %q: want 1-64 of a-z, 0-9, '-', '_'", s.ID)
	}
	if len(s.Description) > 1024 {
		return nil, invalid("description longer than 1024 bytes")
	}
	cr, err := checkTrigger(s.Trigger)
	if err != nil {
		return nil, err
	}
	if rl := s.RateLimit; rl != nil && (rl.Max < 1 || rl.Per <= 0) {
		return nil, invalid("rate_limit: max must be >= 1 and per > 0")
	}
	if s.MaxTargets < 0 {
		return nil, invalid("max_targets must not be negative")
	}
	if err := checkAction(s, mode); err != nil {
		return nil, err
	}
	c := &compiled{spec: s, cron: cr}
	if err := c.compileExprs(maxNodes); err != nil {
		return nil, err
	}
	return c, nil
}

// checkTrigger checks that tr is exactly one kind of trigger with the
// options of that kind, and parses its cron expression if it has one.
func checkTrigger(tr Trigger) (*Cron, error) {
	var cr *Cron
	kinds := 0
	if tr.Event != "" {
		kinds++
	}
	if tr.Every != 0 {
		kinds++
		if tr.Every < Duration(time.Second) {
			return nil, invalid("trigger.every must be at least 1s")
		}
	}
	if tr.Cron != "" {
		kinds++
		var err error
		if cr, err = ParseCron(tr.Cron); err != nil {
			return nil, err
		}
	}
	if kinds != 1 {
		return nil, invalid("trigger: set exactly one of event, every and cron")
	}
	if tr.MinInterval < 0 || (tr.MinInterval != 0 && tr.Event == "") {
		return nil, invalid("trigger.min_interval applies to event triggers only")
	}
	switch tr.CatchUp {
	case "", CatchUpSkip, CatchUpOnce:
	default:
		return nil, invalid("trigger.catch_up %q: want skip or once", tr.CatchUp)
	}
	if tr.Event != "" && (tr.CatchUp != "" || tr.FireOnCreate) {
		return nil, invalid("trigger.catch_up and fire_on_create apply to schedules only")
	}
	return cr, nil
}

// actionNeeds is what an action type requires of the C2 and the spec.
type actionNeeds struct {
	// mode is the only mode the action exists in (its commands are those
	// of that mode); 0: both.
	mode core.Mode
	// noTargets: the action acts on the C2 itself, never on targets.
	noTargets bool
}

// actions is the table of action types: a type not in it is refused.
var actions = map[string]actionNeeds{
	ActionRotateTopic:     {},
	ActionRotateClientKey: {mode: core.SymKey},
	ActionResetClient:     {},
	ActionDetachClient:    {},
	ActionSharePubKeys:    {mode: core.PubKey},
	ActionRotateC2Key:     {mode: core.PubKey, noTargets: true},
}

// modeName is how the error messages name a mode.
var modeName = map[core.Mode]string{core.SymKey: "SK", core.PubKey: "PK"}

// checkAction checks s.Action against the action table, its options, and
// what the trigger can provide in place of missing expressions.
func checkAction(s Spec, mode core.Mode) error {
	a, tr := s.Action, s.Trigger
	needs, ok := actions[a.Type]
	if !ok {
		return invalid("action.type %q: want one of rotate_topic, rotate_client_key, reset_client, detach_client, share_pubkeys, rotate_c2_key", a.Type)
	}
	if needs.mode != 0 && mode != needs.mode {
		return invalid("action %s exists in %s mode only", a.Type, modeName[needs.mode])
	}
	if needs.noTargets && s.Targets != "" {
		return invalid("action %s takes no targets", a.Type)
	}
	if a.Topic != "" && a.Type != ActionDetachClient {
		return invalid("action.topic applies to detach_client only")
	}
	switch a.Pairs {
	case "", PairsAll:
	case PairsEventClient:
		if a.Type != ActionSharePubKeys || tr.Event == "" {
			return invalid("action.pairs event_client applies to event-triggered share_pubkeys only")
		}
	default:
		return invalid("action.pairs %q: want all or event_client", a.Pairs)
	}
	// Without a targets expression the event names the target: only
	// event triggers have one.
	if s.Targets == "" && !needs.noTargets && tr.Event == "" {
		return invalid("targets: a scheduled %s needs a targets expression", a.Type)
	}
	if a.Type == ActionDetachClient && a.Topic == "" && tr.Event == "" {
		return invalid("action.topic: a scheduled detach_client needs a topic expression")
	}
	return nil
}

// compileExprs compiles the spec's expressions, in the order of its
// fields, and notes whether any of them reads clients or topics.
func (c *compiled) compileExprs(maxNodes uint) error {
	s := c.spec
	var err error
	if s.Trigger.Event != "" {
		if c.cond, err = compileExpr("trigger.event", s.Trigger.Event, maxNodes, expr.AsBool()); err != nil {
			return err
		}
	}
	if s.Targets != "" {
		if c.targets, err = compileExpr("targets", s.Targets, maxNodes); err != nil {
			return err
		}
		if err := checkTargetsType(c.targets); err != nil {
			return err
		}
	}
	if s.Action.Topic != "" {
		if c.topic, err = compileExpr("action.topic", s.Action.Topic, maxNodes, expr.AsKind(reflect.String)); err != nil {
			return err
		}
	}
	for _, p := range []*vm.Program{c.cond, c.targets, c.topic} {
		if p != nil && namesState(p) {
			c.needState = true
		}
	}
	return nil
}

func compileExpr(field, src string, maxNodes uint, opts ...expr.Option) (*vm.Program, error) {
	if len(src) > 16<<10 {
		return nil, invalid("%s: expression longer than 16 KiB", field)
	}
	if err := checkPredicateDepth(field, src); err != nil {
		return nil, err
	}
	all := append([]expr.Option{expr.Env(Env{}), expr.MaxNodes(maxNodes)}, guardOptions()...)
	all = append(all, stringCapOptions()...)
	p, err := expr.Compile(src, append(all, opts...)...)
	if err != nil {
		ce := &CompileError{Field: field, Message: err.Error()}
		var fe *file.Error
		if errors.As(err, &fe) {
			ce.Line, ce.Column, ce.Message = fe.Line, fe.Column, fe.Message
		}
		if ce.Line == 0 {
			// No location: the error is about the whole expression
			// (e.g. its type), which starts at line 1, column 0.
			ce.Line = 1
		}
		return nil, ce
	}
	return p, nil
}

// checkTargetsType refuses, at compile time, a targets expression whose
// static type can never name targets (a bool, a number...).
func checkTargetsType(p *vm.Program) error {
	t := p.Node().Type()
	if t == nil {
		return nil
	}
	switch t.Kind() {
	case reflect.Interface, reflect.Slice, reflect.Array, reflect.String:
		return nil
	case reflect.Struct:
		if t == reflect.TypeOf(Client{}) || t == reflect.TypeOf(Topic{}) {
			return nil
		}
	}
	return &CompileError{Field: "targets", Line: 1, Message: fmt.Sprintf("targets must be a list of clients, topics or names, not %v", t)}
}

// namesState reports whether a program reads clients or topics, so that
// the engine builds those lists only for rules that use them.
func namesState(p *vm.Program) bool {
	v := &identVisitor{}
	node := p.Node()
	ast.Walk(&node, v)
	return v.found
}

type identVisitor struct{ found bool }

func (v *identVisitor) Visit(n *ast.Node) {
	if id, ok := (*n).(*ast.IdentifierNode); ok && (id.Value == "clients" || id.Value == "topics") {
		v.found = true
	}
}
