package lease_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/memstore"
	"github.com/e4c2/e4c2/internal/lease"
	"github.com/e4c2/e4c2/internal/testwait"
)

// clock is a manual clock shared by the instances of a test: every
// interval the protocol measures is a difference of its readings.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_000_000, 0)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

const T = 8 * time.Second

func newLease(t *testing.T, st eventstore.Store, instance string, now func() time.Time) *lease.Lease {
	t.Helper()
	l, err := lease.New(lease.Config{Store: st, Duty: "delivery", Instance: instance, Duration: T, Now: now,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func step(t *testing.T, l *lease.Lease) lease.State {
	t.Helper()
	st, err := l.Step(context.Background())
	if err != nil {
		t.Logf("step: %v", err)
	}
	return st
}

// TestOneHolderAndTakeover: the first instance acquires, a standby never
// takes over while the holder renews, and takes over T after it last saw
// a renewal once the holder stops renewing, not earlier.
func TestOneHolderAndTakeover(t *testing.T) {
	st, c := memstore.New(), newClock()
	a, b := newLease(t, st, "a", c.Now), newLease(t, st, "b", c.Now)
	if s := step(t, a); s != lease.Holder {
		t.Fatalf("a on an empty stream: %v, want holder", s)
	}
	if s := step(t, b); s != lease.Standby {
		t.Fatalf("b: %v, want standby", s)
	}
	for range 30 { // 30 rounds of T/8: the holder renews every T/3
		c.Advance(T / 8)
		if s := step(t, a); s != lease.Holder {
			t.Fatalf("a while renewing: %v", s)
		}
		if s := step(t, b); s != lease.Standby {
			t.Fatalf("b took over a renewed lease: %v", s)
		}
	}
	// a dies now. b saw its newest renewal at most T/8 ago.
	died := c.Now()
	var took time.Duration
	for range 40 {
		c.Advance(T / 8)
		if step(t, b) == lease.Holder {
			took = c.Now().Sub(died)
			break
		}
	}
	if took == 0 || took < T-T/3 || took > T+2*T/8 {
		t.Fatalf("b took over %v after a died; want within [%v, %v]", took, T-T/3, T+2*T/8)
	}
	stB := b.Status()
	if stB.Term != 2 || stB.Acquisitions != 1 {
		t.Fatalf("b's status %+v: want term 2, one acquisition", stB)
	}
	// a comes back (a paused process): its renewal conflicts, it is a
	// standby and says who holds the lease.
	if s := step(t, a); s != lease.Standby {
		t.Fatalf("a after b took over: %v, want standby", s)
	}
	if h := a.Status().Holder; h == "" || h[:2] != "b/" {
		t.Fatalf("a sees holder %q, want b", h)
	}
}

// failing makes Append fail (the store unreachable for this instance) or,
// with lostAnswer, store the events and still report a failure.
type failing struct {
	eventstore.Store
	fail, lostAnswer atomic.Bool
}

var errDown = errors.New("store unreachable")

func (f *failing) Append(ctx context.Context, stream string, expected int64, evs ...eventstore.EventData) (uint64, error) {
	if f.lostAnswer.Load() {
		_, _ = f.Store.Append(ctx, stream, expected, evs...)
		return 0, errDown
	}
	if f.fail.Load() {
		return 0, errDown
	}
	return f.Store.Append(ctx, stream, expected, evs...)
}

func (f *failing) ReadStream(ctx context.Context, stream string, from uint64) ([]eventstore.Record, error) {
	if f.fail.Load() {
		return nil, errDown
	}
	return f.Store.ReadStream(ctx, stream, from)
}

// TestFenceBeforeTakeover: a holder cut off from the store stops its duty
// (lost) strictly before any standby may take the lease, and a holder
// whose store comes back before anyone took over holds it again.
func TestFenceBeforeTakeover(t *testing.T) {
	st, c := memstore.New(), newClock()
	fa := &failing{Store: st}
	a, b := newLease(t, fa, "a", c.Now), newLease(t, st, "b", c.Now)
	step(t, a)
	step(t, b)
	fa.fail.Store(true)
	var fenced, took time.Time
	for range 40 {
		c.Advance(T / 16)
		if fenced.IsZero() && step(t, a) == lease.Lost {
			fenced = c.Now()
		}
		if took.IsZero() && step(t, b) == lease.Holder {
			took = c.Now()
		}
	}
	if fenced.IsZero() || took.IsZero() || !fenced.Before(took) {
		t.Fatalf("a fenced at %v, b took over at %v: the holder must stop first", fenced, took)
	}
	// a's store is back: its renewal conflicts, it stays fenced as a standby.
	fa.fail.Store(false)
	if s := step(t, a); s != lease.Standby {
		t.Fatalf("a after b took over: %v", s)
	}

	// Now b is cut off briefly and recovers before its fence: still holder.
	st2, c2 := memstore.New(), newClock()
	fb := &failing{Store: st2}
	h := newLease(t, fb, "h", c2.Now)
	step(t, h)
	fb.fail.Store(true)
	c2.Advance(T / 3)
	if s := step(t, h); s != lease.Holder {
		t.Fatalf("one failed renewal before the fence: %v, want holder", s)
	}
	fb.fail.Store(false)
	c2.Advance(T / 8)
	if s := step(t, h); s != lease.Holder {
		t.Fatalf("after the store came back: %v", s)
	}
}

// TestLostAnswer: the store kept a renewal whose answer was lost: the next
// renewal conflicts with our own event, and the holder keeps the lease.
func TestLostAnswer(t *testing.T) {
	st, c := memstore.New(), newClock()
	f := &failing{Store: st}
	a := newLease(t, f, "a", c.Now)
	step(t, a)
	f.lostAnswer.Store(true)
	c.Advance(T / 3)
	step(t, a)
	f.lostAnswer.Store(false)
	c.Advance(T / 8)
	if s := step(t, a); s != lease.Holder {
		t.Fatalf("after a lost answer: %v, want holder", s)
	}
	c.Advance(T / 3)
	if s := step(t, a); s != lease.Holder {
		t.Fatalf("renewal after the lost answer: %v, want holder", s)
	}
	recs, _ := st.ReadStream(context.Background(), lease.Stream("delivery"), 1)
	if len(recs) != 3 {
		t.Fatalf("%d lease events, want 3 (acquired, renewed with its answer lost, renewed)", len(recs))
	}
}

// TestRaceExactlyOne: eight instances contend for a free lease at once:
// exactly one holds it.
func TestRaceExactlyOne(t *testing.T) {
	st, c := memstore.New(), newClock()
	ls := make([]*lease.Lease, 8)
	for i := range ls {
		ls[i] = newLease(t, st, string(rune('a'+i)), c.Now)
	}
	var wg sync.WaitGroup
	states := make([]lease.State, len(ls))
	for i, l := range ls {
		wg.Add(1)
		go func() { defer wg.Done(); states[i], _ = l.Step(context.Background()) }()
	}
	wg.Wait()
	holders := 0
	for _, s := range states {
		if s == lease.Holder {
			holders++
		}
	}
	if holders != 1 {
		t.Fatalf("%d holders, want 1 (%v)", holders, states)
	}
}

// TestRunReleases: Run runs the duty while it holds the lease; cancelling
// it stops the duty before it releases, and a standby takes over at its
// next round without waiting out the duration.
func TestRunReleases(t *testing.T) {
	st, c := memstore.New(), newClock()
	a, b := newLease(t, st, "a", time.Now), newLease(t, st, "b", c.Now)
	ctx, cancel := context.WithCancel(context.Background())
	running, stopped := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- a.Run(ctx, func(ctx context.Context) {
			close(running)
			<-ctx.Done()
			close(stopped)
		})
	}()
	testwait.Ready(t, "the duty to start", running)
	if s := step(t, b); s != lease.Standby {
		t.Fatalf("b: %v", s)
	}
	cancel()
	testwait.Ready(t, "Run to return", done)
	select {
	case <-stopped:
	default:
		t.Fatal("Run returned before its duty stopped")
	}
	if s := step(t, b); s != lease.Holder {
		t.Fatalf("b after a released: %v, want holder at once", s)
	}
}
