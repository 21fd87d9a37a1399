package automation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

// Service is what the engine needs of the C2 application service;
// *c2.Service implements it. Rules act only through these calls, like any
// other caller of the service.
type Service interface {
	Mode() core.Mode
	Suite() core.Suite
	KeyState() *projections.KeyState
	WaitPosition(ctx context.Context, pos uint64) error
	RotateTopic(ctx context.Context, o c2.Origin, topic string) (c2.Result, error)
	NewClientKey(ctx context.Context, o c2.Origin, c c2.ClientRef) (c2.Result, error)
	ResetClient(ctx context.Context, o c2.Origin, c c2.ClientRef) (c2.Result, error)
	RemoveTopicClient(ctx context.Context, o c2.Origin, c c2.ClientRef, topic string) (c2.Result, error)
	SendClientPubKey(ctx context.Context, o c2.Origin, dst, src c2.ClientRef) (c2.Result, error)
	NewC2Key(ctx context.Context, o c2.Origin) (c2.Result, error)
}

var _ Service = (*c2.Service)(nil)

// Config configures an Engine. Store and Service are required; the store
// must be the one the service uses.
type Config struct {
	Store   eventstore.Store
	Service Service
	// Clock gives fire times and schedule ticks (default time.Now).
	Clock func() time.Time
	// Rand gives event ids (default crypto/rand).
	Rand io.Reader
	// Checkpoints persists the position of the engine in the log. Nil: the
	// engine keeps it in memory and a new Engine starts at the end of the
	// log (events appended while no engine ran are then not evaluated).
	Checkpoints projections.Checkpointer
	// CheckpointName is the checkpoint key (default "automation"). Two
	// engines sharing a store need their own checkpoints.
	CheckpointName string
	// CheckpointEvery bounds how often the checkpoint is written besides
	// after each fire and when Run returns (default 1s).
	CheckpointEvery time.Duration
	// MaxDepth is the causation depth past which a fire is refused and the
	// rule stopped (default 3): an operator's event has depth 0, a fire it
	// causes depth 1, an event written by that fire's action depth 1, a
	// fire caused by that event depth 2, and so on.
	MaxDepth int
	// MaxNodes is the node budget of one expression (default 2000).
	MaxNodes uint
	// MemoryBudget bounds the memory one expression run may use, in expr
	// VM units (default 200,000).
	MemoryBudget uint
	// EvalBudget bounds the time of one expression run (default 50 ms):
	// a run still going is stopped with ErrBudgetExceeded. A live rule
	// whose condition or targets exceed it is paused (rule.paused.v1, kind
	// "budget"); a dry run reports it as its error. Runs also stop when
	// the caller's context is done (engine shutdown, HTTP client gone).
	EvalBudget time.Duration
	// TickInterval is how often Run evaluates schedules (default 1s; a
	// negative value disables the ticker: call Tick yourself).
	TickInterval time.Duration
	// CatchUpGrace is how late a tick may be and still count as on time
	// (default 1 minute); later ticks follow the rule's catch-up policy.
	CatchUpGrace time.Duration
	// Logger receives warnings (default slog.Default()).
	Logger *slog.Logger
}

// Engine evaluates rules. Its management methods are safe for concurrent
// use and may be called whether Run is running or not.
type Engine struct {
	cfg Config
	// startEnd is where Run starts without a checkpoint store: the end
	// of the log when New ran.
	startEnd uint64
	store    eventstore.Store
	svc      Service
	mode     core.Mode
	clock    func() time.Time
	log      *slog.Logger

	randMu sync.Mutex

	mu       sync.Mutex
	known    map[string]struct{}  // rule ids (for ListRules and Tick)
	active   map[string]*entry    // in-order registry (event evaluation)
	compiled map[string]*compiled // cache: id + "@" + spec version
	depths   depthMap
	names    map[domain.ID]string // topic hash / client id -> name

	pos       uint64 // last record processed
	processed chan struct{}
	running   bool
	scanned   bool // ListRules scanned the log for rule streams

	loopVM vm.VM // used by the subscription goroutine only

	// ticks counts the schedule evaluations Run's ticker completed, so a
	// test can wait for a whole tick instead of sleeping and hoping.
	ticks atomic.Uint64
}

// entry is a rule as the event loop knows it at its position in the log.
type entry struct {
	id      string
	status  string
	specPos uint64
	c       *compiled // nil when the stored spec does not compile
}

// New returns an engine. It reads nothing yet: Run replays the rule streams.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil || cfg.Service == nil {
		return nil, errors.New("automation: config needs Store and Service")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.CheckpointName == "" {
		cfg.CheckpointName = "automation"
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = time.Second
	}
	if cfg.MaxDepth <= 0 {
		cfg.MaxDepth = 3
	}
	if cfg.MaxNodes == 0 {
		cfg.MaxNodes = defaultMaxNodes
	}
	if cfg.MemoryBudget == 0 {
		cfg.MemoryBudget = defaultMemoryBudget
	}
	if cfg.EvalBudget <= 0 {
		cfg.EvalBudget = defaultEvalBudget
	}
	if cfg.TickInterval == 0 {
		cfg.TickInterval = time.Second
	}
	if cfg.CatchUpGrace <= 0 {
		cfg.CatchUpGrace = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	e := &Engine{
		cfg: cfg, store: cfg.Store, svc: cfg.Service, mode: cfg.Service.Mode(),
		clock: cfg.Clock, log: cfg.Logger,
		known: map[string]struct{}{}, active: map[string]*entry{},
		compiled: map[string]*compiled{}, names: map[domain.ID]string{},
		depths:    newDepthMap(1 << 16),
		processed: make(chan struct{}),
	}
	e.loopVM.MemoryBudget = cfg.MemoryBudget
	if cfg.Checkpoints == nil {
		// Without a checkpoint the engine follows the log from its end as
		// of New, not as of whenever Run gets scheduled: an event appended
		// between the two is evaluated, not silently skipped.
		end, err := e.lastPosition(context.Background())
		if err != nil {
			return nil, fmt.Errorf("automation: find the end of the log: %w", err)
		}
		e.startEnd = end
	}
	return e, nil
}

func (e *Engine) now() time.Time { return e.clock().UTC() }

func (e *Engine) newID() string {
	var b [16]byte
	e.randMu.Lock()
	_, err := io.ReadFull(e.cfg.Rand, b[:])
	e.randMu.Unlock()
	if err != nil {
		// crypto/rand does not fail; a broken test reader is a bug.
		panic("automation: random source failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

func (e *Engine) meta(o c2.Origin) eventstore.Metadata {
	m := eventstore.Metadata{Time: e.now(), Actor: o.Actor, CausationID: o.CausationID,
		CorrelationID: o.CorrelationID, Suite: e.svc.Suite().Name(), Mode: e.mode.String()}
	if m.Actor == "" {
		m.Actor = "system"
	}
	if m.CorrelationID == "" {
		m.CorrelationID = e.newID()
	}
	return m
}

// Position returns the last log position the engine processed.
func (e *Engine) Position() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pos
}

// WaitPosition blocks until the engine processed pos (tests, and callers
// that want a rule's reaction to an event they wrote to have happened).
func (e *Engine) WaitPosition(ctx context.Context, pos uint64) error {
	for {
		e.mu.Lock()
		done, ch := e.pos >= pos, e.processed
		e.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (e *Engine) setPos(p uint64) {
	e.mu.Lock()
	e.pos = p
	close(e.processed)
	e.processed = make(chan struct{})
	e.mu.Unlock()
}

// compiledFor returns the compiled programs of a rule state, compiling
// each spec version once.
func (e *Engine) compiledFor(st *ruleState) (*compiled, error) {
	key := fmt.Sprintf("%s@%d", st.ID, st.specVersion)
	e.mu.Lock()
	c, ok := e.compiled[key]
	e.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := compileSpec(st.Spec, e.mode, e.cfg.MaxNodes)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.compiled[key] = c
	e.mu.Unlock()
	return c, nil
}

// Run follows the log until ctx is done: it replays the rule streams up to
// the checkpoint without acting, then evaluates every later event, and runs
// the schedule ticker. It returns ctx's error, or the first store error.
// One Run at a time per Engine (a second concurrent call fails); two
// instances of the C2 use two Engines.
func (e *Engine) Run(ctx context.Context) error {
	if err := e.claimRun(); err != nil {
		return err
	}
	defer e.releaseRun()
	start, err := e.startPosition()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if e.cfg.TickInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.runTicker(ctx)
		}()
	}
	ck := &checkpointer{e: e, saved: start, lastSave: time.Now()}
	from, err := e.resume(ctx, start)
	if err != nil {
		cancel()
		wg.Wait()
		return err
	}
	err = e.store.Subscribe(ctx, from, func(r eventstore.Record) error {
		return e.follow(ctx, &r, start, ck)
	})
	cancel()
	wg.Wait()
	if p := e.Position(); p > start {
		ck.save(p)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return ctx.Err()
	}
	return fmt.Errorf("automation: subscription: %w", err)
}

// claimRun marks the engine running; one Run at a time, because the
// subscription goroutine owns loopVM and the position.
func (e *Engine) claimRun() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running {
		return errors.New("automation: engine already running")
	}
	e.running = true
	return nil
}

func (e *Engine) releaseRun() {
	e.mu.Lock()
	e.running = false
	e.mu.Unlock()
}

// startPosition is the last position already acted on: the checkpoint, or
// without a checkpoint store the end of the log as New saw it (what came
// before this process is not acted on again).
func (e *Engine) startPosition() (uint64, error) {
	if e.cfg.Checkpoints == nil {
		return e.startEnd, nil
	}
	p, err := e.cfg.Checkpoints.Load(e.cfg.CheckpointName)
	if err != nil {
		return 0, fmt.Errorf("automation: load checkpoint: %w", err)
	}
	return p, nil
}

// runTicker evaluates the schedules every TickInterval until ctx is done.
func (e *Engine) runTicker(ctx context.Context) {
	t := time.NewTicker(e.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.Tick(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("automation: schedule tick", "err", err)
			}
			e.ticks.Add(1)
		}
	}
}

// resume returns the position the subscription starts from. Up to the
// checkpoint only the rule events matter: when the store can list its
// streams they are read from the rule streams rather than the whole log,
// and the subscription starts after the checkpoint.
func (e *Engine) resume(ctx context.Context, start uint64) (uint64, error) {
	if start == 0 {
		return 1, nil
	}
	recs, ok, err := e.ruleRecordsUpTo(ctx, start)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 1, nil
	}
	for i := range recs {
		e.applyRuleRecord(&recs[i])
	}
	e.setPos(start)
	return start + 1, nil
}

// follow handles one record of Run's subscription: rule events update the
// registry at any position; other events are evaluated only after start
// (before it they were acted on by an earlier run).
func (e *Engine) follow(ctx context.Context, r *eventstore.Record, start uint64, ck *checkpointer) error {
	fired := false
	if IsRuleEvent(r.Type) {
		e.applyRuleRecord(r)
	} else if r.Position > start {
		var err error
		if fired, err = e.process(ctx, r); err != nil {
			return err
		}
	}
	e.setPos(r.Position)
	// A fire is saved at once, so that a restart does not fire it again;
	// other positions at most every CheckpointEvery.
	if r.Position > start && (fired || time.Since(ck.lastSave) >= e.cfg.CheckpointEvery) {
		ck.save(r.Position)
	}
	return nil
}

// checkpointer saves Run's position to the checkpoint store, skipping
// saves of an unchanged position.
type checkpointer struct {
	e        *Engine
	saved    uint64
	lastSave time.Time
}

func (c *checkpointer) save(p uint64) {
	cfg := &c.e.cfg
	if cfg.Checkpoints == nil || p == c.saved {
		return
	}
	if err := cfg.Checkpoints.Save(cfg.CheckpointName, p); err != nil {
		c.e.log.Warn("automation: save checkpoint", "err", err)
		return
	}
	c.saved, c.lastSave = p, time.Now()
}

func (e *Engine) lastPosition(ctx context.Context) (uint64, error) {
	// Page forward from the service's position to the end.
	p := e.svc.KeyState().Position()
	for {
		recs, err := e.store.ReadAll(ctx, p+1, 1024)
		if err != nil {
			return 0, err
		}
		if len(recs) == 0 {
			return p, nil
		}
		p = recs[len(recs)-1].Position
	}
}

// applyRuleRecord updates the in-order registry with a rule event.
func (e *Engine) applyRuleRecord(r *eventstore.Record) {
	id, ok := strings.CutPrefix(r.Stream, StreamPrefix)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.known[id] = struct{}{}
	en := e.active[id]
	switch r.Type {
	case TypeRuleCreated, TypeRuleUpdated:
		var p ruleSpecEvent
		if err := decodePayload(r.Type, r.Data, &p); err != nil {
			e.log.Warn("automation: rule event", "rule", id, "err", err)
			return
		}
		p.Spec.ID = id
		if en == nil {
			en = &entry{id: id, status: StatusActive}
			e.active[id] = en
		}
		en.specPos = r.Position
		c, err := compileSpec(p.Spec, e.mode, e.cfg.MaxNodes)
		if err != nil {
			// A spec stored under another mode or budget: the rule is
			// kept but cannot fire here.
			e.log.Warn("automation: stored rule does not compile", "rule", id, "err", err)
		}
		en.c = c
		if c != nil {
			e.compiled[fmt.Sprintf("%s@%d", id, r.Version)] = c
		}
	case TypeRulePaused:
		if en != nil {
			en.status = StatusPaused
		}
	case TypeRuleStopped:
		if en != nil {
			en.status = StatusStopped
		}
	case TypeRuleResumed:
		if en != nil {
			en.status = StatusActive
		}
	case TypeRuleDeleted:
		delete(e.active, id)
		delete(e.known, id)
	case TypeRuleFired:
		var p firedEvent
		if err := decodePayload(r.Type, r.Data, &p); err == nil {
			e.depths.put(id, p.Cause, p.Depth)
		}
	}
}

// depthMap remembers the depth of recent fires by (rule, cause), bounded
// in size: the depth of an event a rule wrote is the depth of its fire.
type depthMap struct {
	m    map[string]int
	ring []string
	next int
}

func newDepthMap(n int) depthMap {
	return depthMap{m: make(map[string]int, n), ring: make([]string, n)}
}

func (d *depthMap) put(rule, cause string, depth int) {
	k := rule + "\x00" + cause
	if _, ok := d.m[k]; ok {
		d.m[k] = depth
		return
	}
	if old := d.ring[d.next]; old != "" {
		delete(d.m, old)
	}
	d.ring[d.next] = k
	d.next = (d.next + 1) % len(d.ring)
	d.m[k] = depth
}

func (d *depthMap) get(rule, cause string) (int, bool) {
	v, ok := d.m[rule+"\x00"+cause]
	return v, ok
}
