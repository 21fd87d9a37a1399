package projections

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/e4c2/e4c2/eventstore"
)

// Projection is a read model fed from the log in global order.
type Projection interface {
	// Name identifies the projection (checkpoint key).
	Name() string
	// Position is the global position of the last applied record (0:
	// none).
	Position() uint64
	// Apply applies one record. Records arrive in global order, each once.
	Apply(r eventstore.Record) error
}

// Durable is a Projection whose state survives restarts (an external table,
// a file): the Runner restores its checkpoint and resumes after it. A
// projection held in memory is not Durable and always restarts at zero.
type Durable interface {
	Projection
	// Restore tells the projection its state is the one at pos.
	Restore(pos uint64) error
}

// Checkpointer persists projection positions.
type Checkpointer interface {
	// Load returns the saved position of name (0 when none).
	Load(name string) (uint64, error)
	// Save records pos for name.
	Save(name string, pos uint64) error
}

// FileCheckpoints keeps one file per projection in Dir, written atomically
// (temporary file, fsync, rename), so a crash leaves the old or the new
// position, never a torn one.
type FileCheckpoints struct{ Dir string }

func (f FileCheckpoints) path(name string) string {
	return filepath.Join(f.Dir, name+".checkpoint")
}

// Load implements Checkpointer.
func (f FileCheckpoints) Load(name string) (uint64, error) {
	b, err := os.ReadFile(f.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("projections: checkpoint %s: %w", name, err)
	}
	pos, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("projections: checkpoint %s: malformed: %w", name, err)
	}
	return pos, nil
}

// Save implements Checkpointer.
func (f FileCheckpoints) Save(name string, pos uint64) error {
	tmp, err := os.CreateTemp(f.Dir, name+".checkpoint.*")
	if err != nil {
		return fmt.Errorf("projections: checkpoint %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if _, err = tmp.WriteString(strconv.FormatUint(pos, 10) + "\n"); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.path(name))
	}
	if err != nil {
		return fmt.Errorf("projections: checkpoint %s: %w", name, err)
	}
	return nil
}

// MemCheckpoints is a Checkpointer in memory (tests, embedded use).
type MemCheckpoints struct {
	mu sync.Mutex
	m  map[string]uint64
}

// Load implements Checkpointer.
func (m *MemCheckpoints) Load(name string) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.m[name], nil
}

// Save implements Checkpointer.
func (m *MemCheckpoints) Save(name string, pos uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = make(map[string]uint64)
	}
	m.m[name] = pos
	return nil
}

// Runner feeds projections from a store: CatchUp reads what is stored, Run
// then follows the live subscription. Checkpoints of Durable projections
// are saved at most every CheckpointEvery and when Run returns.
type Runner struct {
	store eventstore.Store
	cp    Checkpointer
	projs []Projection

	// CheckpointEvery bounds how often checkpoints are written.
	CheckpointEvery time.Duration

	pos      atomic.Uint64
	waiters  atomic.Int32
	mu       sync.Mutex
	changed  chan struct{}
	failed   error
	lastSave time.Time

	subErr atomic.Pointer[error] // the last dropped subscription, while resubscribing
	resubs atomic.Uint64         // dropped subscriptions
}

// NewRunner returns a runner for projs. cp may be nil when no projection
// is Durable.
func NewRunner(store eventstore.Store, cp Checkpointer, projs ...Projection) *Runner {
	return &Runner{store: store, cp: cp, projs: projs, CheckpointEvery: time.Second, changed: make(chan struct{})}
}

// Position returns the global position every projection has reached.
func (r *Runner) Position() uint64 { return r.pos.Load() }

func (r *Runner) start() error {
	min := uint64(0)
	for i, p := range r.projs {
		pos := p.Position()
		if d, ok := p.(Durable); ok && r.cp != nil && pos == 0 {
			saved, err := r.cp.Load(p.Name())
			if err != nil {
				return err
			}
			if saved > 0 {
				if err := d.Restore(saved); err != nil {
					return fmt.Errorf("projections: restore %s: %w", p.Name(), err)
				}
				pos = saved
			}
		}
		if i == 0 || pos < min {
			min = pos
		}
	}
	if min > r.pos.Load() {
		r.pos.Store(min)
	}
	return nil
}

func (r *Runner) apply(rec eventstore.Record) error {
	for _, p := range r.projs {
		if rec.Position <= p.Position() {
			continue
		}
		if err := p.Apply(rec); err != nil {
			return fmt.Errorf("projections: %s at position %d: %w", p.Name(), rec.Position, err)
		}
	}
	r.pos.Store(rec.Position)
	if r.waiters.Load() > 0 {
		r.notify()
	}
	return nil
}

func (r *Runner) notify() {
	r.mu.Lock()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *Runner) fail(err error) error {
	r.mu.Lock()
	if r.failed == nil {
		r.failed = err
	}
	r.mu.Unlock()
	r.notify()
	return err
}

// CatchUp applies every stored record after the current position and
// returns once the projections reached the end of the log as read.
func (r *Runner) CatchUp(ctx context.Context) error {
	if err := r.start(); err != nil {
		return err
	}
	for {
		recs, err := r.store.ReadAll(ctx, r.pos.Load()+1, 4096)
		if err != nil {
			return fmt.Errorf("projections: catch up: %w", err)
		}
		for _, rec := range recs {
			if err := r.apply(rec); err != nil {
				return r.fail(err)
			}
		}
		if len(recs) == 0 {
			r.checkpoint(true)
			return nil
		}
	}
}

// Run follows the log from the current position until ctx is done, the
// store is closed or a projection fails; waiters then see the error. When
// the store ends the subscription with an error of its own (a dropped
// connection it could not recover), Run subscribes again from the current
// position after a growing pause (at most SubscribeRetryMax); meanwhile
// SubscriptionErr reports the error, until a record arrives or the new
// subscription has held for subscriptionSettled.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.start(); err != nil {
		return r.fail(err)
	}
	for attempt := 1; ; attempt++ {
		var applyErr error
		// Once the subscription held, clear the error it replaced (and
		// never a newer one).
		prev := r.subErr.Load()
		settled := time.AfterFunc(subscriptionSettled, func() { r.subErr.CompareAndSwap(prev, nil) })
		err := r.store.Subscribe(ctx, r.pos.Load()+1, func(rec eventstore.Record) error {
			if err := r.apply(rec); err != nil {
				applyErr = err
				return err
			}
			r.subErr.Store(nil)
			r.checkpoint(false)
			return nil
		})
		if !settled.Stop() {
			attempt = 1 // the subscription held: start the backoff again
		}
		r.checkpoint(true)
		if err == nil {
			err = ErrStopped
		}
		if applyErr != nil || ctx.Err() != nil || errors.Is(err, eventstore.ErrClosed) || errors.Is(err, ErrStopped) {
			return r.fail(err)
		}
		r.subErr.Store(&err)
		r.resubs.Add(1)
		t := time.NewTimer(min(time.Duration(attempt)*100*time.Millisecond, SubscribeRetryMax))
		select {
		case <-ctx.Done():
			t.Stop()
			return r.fail(ctx.Err())
		case <-t.C:
		}
	}
}

// SubscribeRetryMax bounds the pause before the runner subscribes again
// after the store dropped its subscription.
var SubscribeRetryMax = 5 * time.Second

// subscriptionSettled is how long a new subscription must hold before the
// runner counts as following the log again when no record arrives.
var subscriptionSettled = 2 * time.Second

// SubscriptionErr returns the error with which the store last dropped the
// runner's subscription while the runner is subscribing again, or nil
// while it follows the log.
func (r *Runner) SubscriptionErr() error {
	if p := r.subErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Err returns the error the runner stopped with (a projection failed, Run
// returned), or nil while it runs.
func (r *Runner) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// Resubscriptions returns how many times the store dropped the runner's
// subscription.
func (r *Runner) Resubscriptions() uint64 { return r.resubs.Load() }

// ErrStopped is returned to waiters once Run has returned.
var ErrStopped = errors.New("projections: runner stopped")

func (r *Runner) checkpoint(force bool) {
	if r.cp == nil {
		return
	}
	now := time.Now()
	if !force && now.Sub(r.lastSave) < r.CheckpointEvery {
		return
	}
	r.lastSave = now
	for _, p := range r.projs {
		if _, ok := p.(Durable); ok {
			// A failed save only costs a longer replay after a restart.
			_ = r.cp.Save(p.Name(), p.Position())
		}
	}
}

// Wait blocks until cond returns true (checked after each applied record),
// ctx is done or the runner failed.
func (r *Runner) Wait(ctx context.Context, cond func() bool) error {
	r.waiters.Add(1)
	defer r.waiters.Add(-1)
	for {
		r.mu.Lock()
		ch, failed := r.changed, r.failed
		r.mu.Unlock()
		if cond() {
			return nil
		}
		if failed != nil {
			return failed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitPosition blocks until the projections reached pos.
func (r *Runner) WaitPosition(ctx context.Context, pos uint64) error {
	return r.Wait(ctx, func() bool { return r.pos.Load() >= pos })
}

// AsOf bounds a replay: records up to Position (if not 0) and with a time
// not after Time (if not zero). The zero AsOf replays everything.
type AsOf struct {
	Position uint64
	Time     time.Time
}

func (a AsOf) includes(rec *eventstore.Record) bool {
	if a.Position != 0 && rec.Position > a.Position {
		return false
	}
	if !a.Time.IsZero() && rec.Meta.Time.After(a.Time) {
		return false
	}
	return true
}

// Rebuild replays the log into fresh projections up to asOf and returns the
// last position applied. The log is in global order and times are the
// deciders' clock, so the replay stops at the first record after asOf.
func Rebuild(ctx context.Context, store eventstore.Store, asOf AsOf, projs ...Projection) (uint64, error) {
	var last uint64
	for {
		recs, err := store.ReadAll(ctx, last+1, 4096)
		if err != nil {
			return last, fmt.Errorf("projections: rebuild: %w", err)
		}
		if len(recs) == 0 {
			return last, nil
		}
		for _, rec := range recs {
			if !asOf.includes(&rec) {
				return last, nil
			}
			for _, p := range projs {
				if err := p.Apply(rec); err != nil {
					return last, fmt.Errorf("projections: rebuild %s at position %d: %w", p.Name(), rec.Position, err)
				}
			}
			last = rec.Position
		}
	}
}
