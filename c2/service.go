package c2

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/sealing"
	"github.com/e4c2/e4c2/internal/eventcodec"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

// Config configures a Service. Store, Sealer, Suite and Mode are required.
type Config struct {
	Store  eventstore.Store
	Sealer sealing.Sealer
	Suite  core.Suite // must implement core.PKSuite in PK mode
	Mode   core.Mode
	// Clock gives event times and command timestamps (default time.Now).
	Clock func() time.Time
	// Rand gives event ids, correlation ids and token secrets (default
	// crypto/rand). Keys come from the suite's generators.
	Rand io.Reader
	// Checkpoints persists the positions of durable projections (optional).
	Checkpoints projections.Checkpointer
	// AuditMax bounds the audit entries kept in memory (0: unlimited).
	AuditMax int
	// MaxRetries bounds the decide-append attempts on version conflicts
	// (default 64).
	MaxRetries int
	// Transition is how long the previous key of a topic still opens
	// messages in UnprotectTopic (default 60 minutes, docs/PROTOCOL.md section 6).
	Transition time.Duration
	// Window is the timestamp window of UnprotectTopic (default
	// core.DefaultWindow).
	Window *core.Window
	// Snapshots, when set, makes New start from the newest valid key-state
	// snapshot and replay only the tail of the log, and the service write
	// one every SnapshotEvery events and at Close (see snapshot.go).
	Snapshots *projections.SnapshotDir
	// SnapshotEvery is the snapshot cadence in events (default
	// DefaultSnapshotEvery).
	SnapshotEvery uint64
	// FromScratch ignores the snapshots at start: the whole log is
	// replayed (snapshots are still written).
	FromScratch bool
	// Logger receives the warnings about snapshots (default slog.Default).
	Logger *slog.Logger
	// ReadOnly is for a store opened read-only (forensics): New creates no
	// first C2 key pair and no snapshot is written.
	ReadOnly bool
}

// Origin says who asks for an operation; it becomes the events' metadata.
type Origin struct {
	// Actor: "token:<name>", "cli:<user>", "rule:<id>" or "system"
	// (default).
	Actor string
	// CausationID: the event or request that caused the operation.
	CausationID string
	// CorrelationID: shared by every event of one user request (default: a
	// new random id per operation).
	CorrelationID string
}

// Result describes the events an operation appended.
type Result struct {
	Stream   string
	Version  uint64   // stream version after the append
	EventIDs []string // ids of the appended events
	Queued   int      // recipients of queued commands
	// Rotated is set when new_topic rotated the key of an existing topic
	// (false when it created the topic).
	Rotated bool
}

// Service is the C2 application service. It is safe for concurrent use.
type Service struct {
	store      eventstore.Store
	sealer     sealing.Sealer
	suite      core.Suite
	pk         core.PKSuite // nil in SK mode
	mode       core.Mode
	clock      func() time.Time
	rand       io.Reader
	randMu     sync.Mutex
	maxRetries int
	// streamLocks serialize the decisions of this process on one stream,
	// so that concurrent callers on a hot stream (8 operators attaching
	// clients to one topic) queue instead of losing optimistic-concurrency
	// races until their retries run out. Other C2 instances on the same
	// store are still arbitrated by the expected version.
	streamLocks [256]sync.Mutex
	transition  time.Duration
	window      core.Window

	ks     *projections.KeyState
	audit  *projections.Audit
	runner *projections.Runner

	snap snapState

	cancel context.CancelFunc
	done   chan struct{}
	closed atomic.Bool

	keyUse keyUseLog // uses of topic keys by the helpers (keyuse.go)
}

// ErrClosed is returned by operations after Close.
var ErrClosed = errors.New("c2: service closed")

// New builds the projections from the store (synchronously: when New
// returns, the read models hold the whole log), starts following the log
// and, in PK mode, creates the first C2 key pair if there is none.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Sealer == nil || cfg.Suite == nil {
		return nil, errors.New("c2: store, sealer and suite are required")
	}
	s := &Service{store: cfg.Store, sealer: cfg.Sealer, suite: cfg.Suite, mode: cfg.Mode,
		clock: cfg.Clock, rand: cfg.Rand, maxRetries: cfg.MaxRetries, transition: cfg.Transition}
	if !modeSupported(cfg.Suite, cfg.Mode) {
		return nil, &core.ModeError{Suite: cfg.Suite.Name(), Mode: cfg.Mode.String(), Reason: "not supported by the suite"}
	}
	if cfg.Mode == core.PubKey {
		pk, ok := cfg.Suite.(core.PKSuite)
		if !ok {
			return nil, &core.ModeError{Suite: cfg.Suite.Name(), Mode: "pk", Reason: "suite has no PK mode"}
		}
		s.pk = pk
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.maxRetries <= 0 {
		s.maxRetries = 64
	}
	if s.transition <= 0 {
		s.transition = 60 * time.Minute
	}
	s.window = core.DefaultWindow()
	if cfg.Window != nil {
		s.window = *cfg.Window
	}
	s.ks = projections.NewKeyState()
	s.audit = projections.NewAudit(cfg.AuditMax)
	s.loadSnapshot(cfg)
	s.runner = projections.NewRunner(cfg.Store, cfg.Checkpoints, s.ks, s.audit)

	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	if err := s.runner.CatchUp(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("c2: load state: %w", err)
	}
	go func() {
		defer close(s.done)
		// The runner keeps its own failure: every Wait after it returns
		// the error, which is how reads and readiness see a stalled log.
		_ = s.runner.Run(ctx)
	}()
	s.fillAudit(ctx, s.ks.TopicNames())
	s.startSnapshots(ctx)
	if s.mode == core.PubKey && !s.ks.C2View().Exists && !cfg.ReadOnly {
		if err := s.ensureC2Key(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("c2: first c2 key: %w", err)
		}
	}
	return s, nil
}

func modeSupported(s core.Suite, m core.Mode) bool {
	for _, x := range s.Modes() {
		if x == m {
			return true
		}
	}
	return false
}

// Close stops following the log. It does not close the store.
func (s *Service) Close() error {
	s.closeKeyUse() // the last counts of the helpers' key uses
	s.closed.Store(true)
	s.cancel()
	<-s.done
	return s.finalSnapshot()
}

// Suite returns the suite in force.
func (s *Service) Suite() core.Suite { return s.suite }

// Mode returns the mode in force.
func (s *Service) Mode() core.Mode { return s.mode }

// KeyState returns the key-state read model (queries, snapshots).
func (s *Service) KeyState() *projections.KeyState { return s.ks }

// AuditLog returns the audit read model.
func (s *Service) AuditLog() *projections.Audit { return s.audit }

// Position returns the global position the read models have reached.
func (s *Service) Position() uint64 { return s.runner.Position() }

// FollowErr says why the read models do not follow the log now: nil while
// they do; the store's error while the runner subscribes again after the
// store dropped its subscription; the error the runner stopped with once
// it stopped for good (a projection failed, the service closed).
func (s *Service) FollowErr() error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.runner.Err(); err != nil {
		return fmt.Errorf("c2: projections stopped: %w", err)
	}
	if err := s.runner.SubscriptionErr(); err != nil {
		return fmt.Errorf("c2: log subscription dropped, subscribing again: %w", err)
	}
	return nil
}

// Resubscriptions returns how many times the store dropped the read
// models' subscription to the log.
func (s *Service) Resubscriptions() uint64 { return s.runner.Resubscriptions() }

// WaitPosition blocks until the read models reached pos (e.g. a position
// seen in a subscription).
func (s *Service) WaitPosition(ctx context.Context, pos uint64) error {
	return s.runner.WaitPosition(ctx, pos)
}

// Subscribe passes through to the store's subscription (catch-up then
// live), for SSE and the automation engine. Records hold sealed keys only.
func (s *Service) Subscribe(ctx context.Context, from uint64, fn func(eventstore.Record) error) error {
	return s.store.Subscribe(ctx, from, fn)
}

// newID returns lowercase hex of 16 random bytes.
func (s *Service) newID() string {
	var b [16]byte
	s.randMu.Lock()
	_, err := io.ReadFull(s.rand, b[:])
	s.randMu.Unlock()
	if err != nil {
		// The configured source failed: fall back on the system one rather
		// than reuse ids.
		_, _ = rand.Read(b[:])
	}
	return hex.EncodeToString(b[:])
}

func (s *Service) meta(o Origin) eventstore.Metadata {
	m := eventstore.Metadata{Time: s.clock().UTC(), Actor: o.Actor, CausationID: o.CausationID,
		CorrelationID: o.CorrelationID, Suite: s.suite.Name(), Mode: s.mode.String()}
	if m.Actor == "" {
		m.Actor = "system"
	}
	if m.CorrelationID == "" {
		m.CorrelationID = s.newID()
	}
	return m
}

// exec decides, appends and waits for the projections. mk builds the
// command for each attempt (it must copy key material: a decision's keys
// are wiped once encoded); view reads the state the command needs.
func (s *Service) exec(ctx context.Context, o Origin, mk func() domain.Command, view func(domain.Command) domain.State) (Result, error) {
	if s.closed.Load() {
		return Result{}, ErrClosed
	}
	meta := s.meta(o)
	// Decide once to learn the stream, then decide again under its lock
	// on fresh state: the previous holder waited for the read models.
	probe := mk()
	pst := view(probe)
	pst.Mode = s.mode
	pd, err := domain.Decide(pst, probe)
	wipeCommand(probe)
	if err != nil {
		return Result{}, err
	}
	lock := s.streamLock(pd.Stream)
	lock.Lock()
	defer lock.Unlock()
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		cmd := mk()
		st := view(cmd)
		st.Mode = s.mode
		d, err := domain.Decide(st, cmd)
		if err != nil {
			wipeCommand(cmd)
			return Result{}, err
		}
		if len(d.Events) == 0 {
			// Nothing to do (a resync of a device in sync): no append.
			wipeCommand(cmd)
			return Result{Stream: d.Stream, Version: s.ks.StreamVersion(d.Stream)}, nil
		}
		evs, err := eventcodec.EncodeDecision(d, s.sealer, meta, s.newID)
		wipeCommand(cmd)
		if err != nil {
			return Result{}, fmt.Errorf("c2: %s: %w", cmd.Op(), err)
		}
		v, err := s.store.Append(ctx, d.Stream, d.Expected, evs...)
		if errors.Is(err, eventstore.ErrConflict) && attempt+1 < s.maxRetries {
			// Someone else appended first: wait until we have seen the
			// stream as it is now, then decide again.
			var ce *eventstore.ConflictError
			target := uint64(0)
			if errors.As(err, &ce) {
				target = ce.Actual
			}
			if target == 0 && d.Expected >= 0 {
				target = uint64(d.Expected) + 1
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			werr := s.runner.Wait(wctx, func() bool { return s.ks.StreamVersion(d.Stream) >= target })
			cancel()
			if werr != nil && ctx.Err() != nil {
				return Result{}, ctx.Err()
			}
			if attempt >= 4 {
				// A caller that keeps losing backs off a little, with
				// jitter, so that it cannot starve behind faster ones.
				select {
				case <-time.After(time.Duration(mrand.Int64N(int64(attempt) * int64(time.Millisecond)))):
				case <-ctx.Done():
					return Result{}, ctx.Err()
				}
			}
			continue
		}
		if err != nil {
			return Result{}, fmt.Errorf("c2: %s: append: %w", cmd.Op(), err)
		}
		if err := s.waitStream(ctx, d.Stream, v); err != nil {
			return Result{}, fmt.Errorf("c2: %s: wait for read models: %w", cmd.Op(), err)
		}
		res := Result{Stream: d.Stream, Version: v}
		for i, ev := range d.Events {
			res.EventIDs = append(res.EventIDs, evs[i].ID)
			switch e := ev.(type) {
			case *domain.CommandQueued:
				res.Queued += len(e.Recipients)
			case *domain.TopicKeyRotated:
				res.Rotated = true
			}
		}
		return res, nil
	}
}

// streamLock returns the lock of a stream (striped: two streams may share
// one, which only serializes them a little more).
func (s *Service) streamLock(stream string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(stream))
	return &s.streamLocks[h.Sum32()%uint32(len(s.streamLocks))]
}

func wipeCommand(cmd domain.Command) {
	switch c := cmd.(type) {
	case domain.RegisterClient:
		clear(c.Key)
	case domain.PutTopic:
		clear(c.Key)
	case domain.RotateClientKey:
		clear(c.Key)
	case domain.RotateC2Key:
		clear(c.Private)
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
