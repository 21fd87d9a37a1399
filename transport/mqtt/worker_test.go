package mqtt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func fastConfig() Config {
	return Config{
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		PollInterval: 20 * time.Millisecond, Logger: quietLogger(),
	}
}

func TestControlTopic(t *testing.T) {
	id := clientID(0x0102)
	if got, want := ControlTopic(id), "e4/e4000000000000000000000000000102"; got != want {
		t.Fatalf("ControlTopic = %q, want %q", got, want)
	}
}

func TestWorkerFIFOAndWindow(t *testing.T) {
	for _, window := range []int{1, 4, 16} {
		t.Run(fmt.Sprint("window=", window), func(t *testing.T) {
			src := newFakeSource()
			pub := newFakePublisher(window)
			pub.delay = 200 * time.Microsecond
			var all []Item
			for i := range 400 {
				all = append(all, src.enqueue(i%7)) // 7 clients, interleaved
			}
			cfg := fastConfig()
			cfg.Prefetch = 50 // forces several fetches
			w := NewWorker(src, pub, cfg)
			if w.Window() != window {
				t.Fatalf("Window() = %d, want %d", w.Window(), window)
			}
			runWorker(t, w)
			waitFor(t, 10*time.Second, "all delivered", func() bool { return src.count("delivered") == len(all) })
			got, viol, maxIn := pub.snapshot()
			if len(viol) > 0 {
				t.Fatalf("violations: %v", viol[:min(5, len(viol))])
			}
			checkOrder(t, got, all)
			if len(got) != len(all) {
				t.Fatalf("published %d, want %d (no duplicates without failures)", len(got), len(all))
			}
			if window > 1 && maxIn < 2 {
				t.Fatalf("max in flight %d: the window was not used", maxIn)
			}
			if st := w.Stats(); st.Delivered != uint64(len(all)) || st.Failed != 0 || st.Published != uint64(len(all)) {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestWorkerWindowClampedToPublisher(t *testing.T) {
	w := NewWorker(newFakeSource(), newFakePublisher(16), Config{Window: 1000})
	if w.Window() != 16 {
		t.Fatalf("Window() = %d, want 16 (publisher's safe window)", w.Window())
	}
	w = NewWorker(newFakeSource(), newFakePublisher(16), Config{Window: 3})
	if w.Window() != 3 {
		t.Fatalf("Window() = %d, want 3", w.Window())
	}
}

func TestWorkerPicksUpNewItems(t *testing.T) {
	src := newFakeSource()
	pub := newFakePublisher(4)
	cfg := fastConfig()
	cfg.PollInterval = time.Hour // only Changed can wake it
	w := NewWorker(src, pub, cfg)
	runWorker(t, w)
	for round := 1; round <= 3; round++ {
		for i := range 5 {
			src.enqueue(i)
		}
		waitFor(t, 5*time.Second, "round delivered", func() bool { return src.count("delivered") == 5*round })
	}
}

func TestWorkerRetriesThenFails(t *testing.T) {
	src := newFakeSource()
	pub := newFakePublisher(4)
	bad := src.enqueue(1)
	next := src.enqueue(1)
	other := src.enqueue(2)
	pub.fail = func(p string) error {
		if strings.Contains(p, ":"+bad.Ref) || strings.HasSuffix(p, bad.Ref) {
			return errors.New("broker said no")
		}
		return nil
	}
	cfg := fastConfig()
	cfg.MaxAttempts = 3
	w := NewWorker(src, pub, cfg)
	runWorker(t, w)
	waitFor(t, 5*time.Second, "outcomes", func() bool { return src.count("") == 3 && src.count("delivered")+src.count("failed") == 3 })
	if s := src.stateOf(bad.Seq); !strings.HasPrefix(s, "failed: ") || !strings.Contains(s, "3 attempts") {
		t.Fatalf("bad item state %q, want failed after 3 attempts", s)
	}
	if src.stateOf(next.Seq) != "delivered" || src.stateOf(other.Seq) != "delivered" {
		t.Fatalf("next %q other %q, want delivered", src.stateOf(next.Seq), src.stateOf(other.Seq))
	}
	if n := src.buildCount(bad.Seq); n != 3 {
		t.Fatalf("bad item built %d times, want 3 (rebuilt per attempt)", n)
	}
	// FIFO across a failure: next went out only after bad was given up.
	src.mu.Lock()
	log := strings.Join(src.log, ",")
	src.mu.Unlock()
	if strings.Index(log, "failed "+bad.Ref) > strings.Index(log, "delivered "+next.Ref) {
		t.Fatalf("next delivered before bad was failed: %s", log)
	}
	if st := w.Stats(); st.Retries != 2 || st.Failed != 1 {
		t.Fatalf("stats %+v, want 2 retries and 1 failure", st)
	}
}

func TestWorkerPermanentBuildError(t *testing.T) {
	src := newFakeSource()
	pub := newFakePublisher(2)
	it := src.enqueue(1)
	src.buildErr = func(x Item, n int) error {
		if x.Seq == it.Seq {
			return fmt.Errorf("client removed: %w", ErrPermanent)
		}
		return nil
	}
	after := src.enqueue(1)
	runWorker(t, NewWorker(src, pub, fastConfig()))
	waitFor(t, 5*time.Second, "both recorded", func() bool { return src.count("") == 2 })
	if s := src.stateOf(it.Seq); !strings.HasPrefix(s, "failed: ") {
		t.Fatalf("state %q, want failed", s)
	}
	if n := src.buildCount(it.Seq); n != 1 {
		t.Fatalf("built %d times, want 1", n)
	}
	if src.stateOf(after.Seq) != "delivered" {
		t.Fatal("item after a permanent failure not delivered")
	}
}

func TestWorkerTransientBuildErrorRetried(t *testing.T) {
	src := newFakeSource()
	pub := newFakePublisher(2)
	it := src.enqueue(1)
	src.buildErr = func(x Item, n int) error {
		if n < 3 {
			return errors.New("store busy")
		}
		return nil
	}
	runWorker(t, NewWorker(src, pub, fastConfig()))
	waitFor(t, 5*time.Second, "delivered", func() bool { return src.stateOf(it.Seq) == "delivered" })
	if n := src.buildCount(it.Seq); n != 3 {
		t.Fatalf("built %d times, want 3", n)
	}
}

// An outage longer than the retry bound fails nothing and delivers all, in
// order, when the broker returns.
func TestWorkerOutageBurnsNoAttempts(t *testing.T) {
	src := newFakeSource()
	pub := newFakePublisher(4)
	pub.setConnected(false)
	var all []Item
	for i := range 30 {
		all = append(all, src.enqueue(i%3))
	}
	cfg := fastConfig()
	cfg.MaxAttempts = 2
	cfg.MaxAge = 30 * time.Millisecond
	w := NewWorker(src, pub, cfg)
	start := time.Now()
	runWorker(t, w)
	// The outage must outlast MaxAge (and many would-be attempts): the
	// point is what does NOT happen in it, so the wait is on the worker's
	// waits and on time having passed, not on an event.
	waitFor(t, 5*time.Second, "unavailable waits past 3 x MaxAge", func() bool {
		return w.Stats().Unavailable >= 9 && time.Since(start) > 3*cfg.MaxAge
	})
	if n := src.count(""); n != 0 {
		t.Fatalf("%d items recorded during the outage", n)
	}
	pub.setConnected(true)
	waitFor(t, 10*time.Second, "all delivered", func() bool { return src.count("delivered") == len(all) })
	got, viol, _ := pub.snapshot()
	if len(viol) > 0 {
		t.Fatal(viol)
	}
	checkOrder(t, got, all)
	if st := w.Stats(); st.Failed != 0 || st.Retries != 0 {
		t.Fatalf("stats %+v: an outage must not count attempts", st)
	}
}

// A connection lost during the publish (ErrUnavailable) is not counted.
func TestWorkerUnavailableDuringPublishNotCounted(t *testing.T) {
	src := newFakeSource()
	pub := newFakePublisher(1)
	var n atomic.Int32
	pub.fail = func(string) error {
		if n.Add(1) <= 3 {
			return fmt.Errorf("connection lost: %w", ErrUnavailable)
		}
		return nil
	}
	it := src.enqueue(1)
	cfg := fastConfig()
	cfg.MaxAttempts = 1
	w := NewWorker(src, pub, cfg)
	runWorker(t, w)
	waitFor(t, 5*time.Second, "delivered", func() bool { return src.stateOf(it.Seq) == "delivered" })
	if st := w.Stats(); st.Unavailable != 3 || st.Failed != 0 {
		t.Fatalf("stats %+v, want 3 unavailable waits and no failure", st)
	}
}

func TestWorkerMaxAge(t *testing.T) {
	src := newFakeSource()
	pub := newFakePublisher(1)
	pub.fail = func(string) error { return errors.New("refused") }
	// A clock that advances a minute per call.
	var clock atomic.Int64
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := fastConfig()
	cfg.MaxAttempts = 1000
	cfg.MaxAge = 5 * time.Minute
	cfg.Now = func() time.Time { return base.Add(time.Duration(clock.Add(1)) * time.Minute) }
	it := src.enqueue(1)
	w := NewWorker(src, pub, cfg)
	runWorker(t, w)
	waitFor(t, 5*time.Second, "failed", func() bool { return strings.HasPrefix(src.stateOf(it.Seq), "failed") })
	if st := w.Stats(); st.Published < 2 || st.Published > 4 {
		t.Fatalf("published %d times before MaxAge, want 2..4", st.Published)
	}
}

func TestWorkerDeliveredRecordRetried(t *testing.T) {
	src := newFakeSource()
	pub := newFakePublisher(1)
	var n atomic.Int32
	src.deliveredErr = func(Item) error {
		if n.Add(1) <= 2 {
			return errors.New("store down")
		}
		return nil
	}
	it := src.enqueue(1)
	runWorker(t, NewWorker(src, pub, fastConfig()))
	waitFor(t, 5*time.Second, "delivered", func() bool { return src.stateOf(it.Seq) == "delivered" })
	if got, _, _ := pub.snapshot(); len(got) != 1 {
		t.Fatalf("published %d times, want 1 (a recording error must not republish)", len(got))
	}
}

func TestWorkerGracefulShutdown(t *testing.T) {
	src := newFakeSource()
	pub := newFakePublisher(4)
	pub.block = make(chan struct{})
	pub.started = make(chan struct{}, 1)
	first := src.enqueue(1)
	w := NewWorker(src, pub, fastConfig())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(context.Background()) }()
	<-pub.started
	shut := make(chan error, 1)
	go func() { shut <- w.Shutdown(context.Background()) }()
	waitFor(t, 30*time.Second, "Shutdown to stop the worker", w.stopping)
	later := src.enqueue(2) // queued after Shutdown: not taken
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a publish in flight", err)
	default:
	}
	close(pub.block)
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if src.stateOf(first.Seq) != "delivered" {
		t.Fatal("in-flight publish not recorded before Shutdown returned")
	}
	if src.stateOf(later.Seq) != "" || src.buildCount(later.Seq) != 0 {
		t.Fatal("item queued after Shutdown was processed")
	}
	if err := w.Run(context.Background()); !errors.Is(err, ErrStopped) {
		t.Fatalf("second Run: %v, want ErrStopped", err)
	}
}

func TestWorkerShutdownBounded(t *testing.T) {
	src := newFakeSource()
	pub := newFakePublisher(4)
	pub.block = make(chan struct{}) // never confirmed
	pub.started = make(chan struct{}, 1)
	it := src.enqueue(1)
	w := NewWorker(src, pub, fastConfig())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(context.Background()) }()
	<-pub.started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want deadline exceeded", err)
	}
	<-errc
	if s := src.stateOf(it.Seq); s != "" {
		t.Fatalf("abandoned item recorded %q; it must stay pending for the next run", s)
	}
}

func TestWorkerRestartResends(t *testing.T) {
	src := newFakeSource()
	var all []Item
	for i := range 200 {
		all = append(all, src.enqueue(i%5))
	}
	pub1 := newFakePublisher(8)
	pub1.delay = 100 * time.Microsecond
	w1 := NewWorker(src, pub1, fastConfig())
	ctx, cancel := context.WithCancel(context.Background())
	src.onDelivered = func(n int) {
		if n == 50 {
			cancel() // the C2 dies in the middle
		}
	}
	if err := w1.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v", err)
	}
	src.mu.Lock()
	src.onDelivered = nil
	src.mu.Unlock()
	done := src.count("delivered")
	if done == len(all) {
		t.Fatal("all delivered before the restart: the test proves nothing")
	}
	pub2 := newFakePublisher(8)
	w2 := NewWorker(src, pub2, fastConfig())
	runWorker(t, w2)
	waitFor(t, 5*time.Second, "all delivered", func() bool { return src.count("delivered") == len(all) })
	got1, _, _ := pub1.snapshot()
	got2, _, _ := pub2.snapshot()
	checkOrder(t, append(got1, got2...), all)
}

func TestPrometheusMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewPrometheusMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPrometheusMetrics(reg); err == nil {
		t.Fatal("registering twice succeeded")
	}
	src := newFakeSource()
	pub := newFakePublisher(4)
	bad := src.enqueue(9)
	pub.fail = func(p string) error {
		if strings.HasSuffix(p, ":"+bad.Ref) {
			return errors.New("no")
		}
		return nil
	}
	for i := range 10 {
		src.enqueue(i)
	}
	cfg := fastConfig()
	cfg.MaxAttempts = 2
	cfg.Metrics = m
	runWorker(t, NewWorker(src, pub, cfg))
	waitFor(t, 5*time.Second, "all recorded", func() bool { return src.count("") == 11 })
	// The gauges follow the records (the loop settles after the
	// outcome is written): wait for them to drop to zero.
	waitFor(t, 30*time.Second, "gauges at zero", func() bool {
		v := gather(t, reg)
		return v["e4c2_delivery_queue_depth"] == 0 && v["e4c2_delivery_in_flight"] == 0
	})
	values := gather(t, reg)
	for name, want := range map[string]float64{
		"e4c2_delivery_delivered_total": 10, "e4c2_delivery_failed_total": 1,
		"e4c2_delivery_retries_total": 1, "e4c2_delivery_published_total": 12,
		"e4c2_delivery_unavailable_total": 0,
		"e4c2_delivery_queue_depth":       0, "e4c2_delivery_in_flight": 0,
	} {
		got, ok := values[name]
		if !ok {
			t.Errorf("%s not registered", name)
		} else if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if len(values) != 7 {
		t.Fatalf("registry has %d metrics, want 7: %v", len(values), values)
	}
}

func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				out[mf.GetName()] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[mf.GetName()] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// TestWorkerGateHoldsUnseen: through a Gate (external broker), the commands
// of a device that is not ready stay in the Source, however often the
// worker polls, and go out, in order and as "accepted", once it is ready
// and woken; a ready device's commands are not held meanwhile.
func TestWorkerGateHoldsUnseen(t *testing.T) {
	src := newFakeSource()
	pub := newFakePublisher(4)
	var mu sync.Mutex
	ready := map[[16]byte]bool{clientID(2): true}
	gate := Gate{Publisher: pub, Ready: func(id [16]byte) bool {
		mu.Lock()
		defer mu.Unlock()
		return ready[id]
	}}
	var held, other []Item
	for range 6 {
		held = append(held, src.enqueue(1))
		other = append(other, src.enqueue(2))
	}
	counted := &countingSource{fakeSource: src}
	w := NewWorker(counted, gate, fastConfig())
	runWorker(t, w)
	waitFor(t, 30*time.Second, "the ready device's commands", func() bool { return src.count("delivered") == len(other) })
	// Polls and change notifications must not let the held ones out.
	polls := counted.calls.Load()
	select {
	case src.changed <- struct{}{}:
	default:
	}
	waitFor(t, 30*time.Second, "more polls", func() bool { return counted.calls.Load() >= polls+3 })
	for _, it := range held {
		if st := src.stateOf(it.Seq); st != "" || src.buildCount(it.Seq) != 0 {
			t.Fatalf("held command %s: state %q, built %d times", it.Ref, st, src.buildCount(it.Seq))
		}
	}
	mu.Lock()
	ready[clientID(1)] = true
	mu.Unlock()
	w.Wake(clientID(1))
	waitFor(t, 30*time.Second, "the released commands", func() bool { return src.count("delivered") == len(held)+len(other) })
	for _, it := range held {
		if st := src.stateOf(it.Seq); st != "delivered" {
			t.Fatalf("released command %s: %q, want delivered (accepted, not confirmed)", it.Ref, st)
		}
	}
	got, viol, _ := pub.snapshot()
	if len(viol) > 0 {
		t.Fatal(viol)
	}
	checkOrder(t, got, append(other, held...))
}

// countingSource counts the calls of Pending (the worker's polls).
type countingSource struct {
	*fakeSource
	calls atomic.Int64
}

func (s *countingSource) Pending(ctx context.Context, after uint64, limit int) ([]Item, error) {
	s.calls.Add(1)
	return s.fakeSource.Pending(ctx, after, limit)
}
