package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/storetest"
	"github.com/e4c2/e4c2/internal/testwait"
)

// TestSubscriptionStallEnds: a subscription whose connection hangs (bytes
// held, nothing closed, so neither the client library nor the ordered
// consumer notices for minutes) while another instance appends has its
// consumer recreated, and gets the records once the link is back; one
// whose link stays hung ends with ErrStalled after maxStalls stalls; a
// subscription on an idle log is not ended, however long it waits; and
// one that resumes from its position after the end misses nothing.
func TestSubscriptionStallEnds(t *testing.T) {
	srv := startServer(t, "stall", t.TempDir(), 0, nil)
	t.Cleanup(srv.Shutdown)
	proxy := newCutProxy(t, srv.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const stallAfter = 600 * time.Millisecond
	opts := &Options{RequestTimeout: 300 * time.Millisecond, StallAfter: stallAfter,
		NATSOptions: []nats.Option{nats.IgnoreDiscoveredServers()}}
	hung, err := Open(ctx, "nats://"+proxy.ln.Addr().String(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	writer, err := Open(ctx, clientURL(srv), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()

	var got atomic.Uint64 // the last position delivered
	sub := func(from uint64) chan error {
		done := make(chan error, 1)
		go func() {
			done <- hung.Subscribe(ctx, from, func(r eventstore.Record) error {
				if r.Position != got.Load()+1 {
					t.Errorf("record at %d after %d", r.Position, got.Load())
				}
				got.Store(r.Position)
				return nil
			})
		}()
		return done
	}
	if _, err := writer.Append(ctx, "a", eventstore.Any, storetest.Event(1)); err != nil {
		t.Fatal(err)
	}
	done := sub(1)
	testwait.For(t, "the first record", func() bool { return got.Load() == 1 })

	// Idle log: five stall periods without a record end nothing.
	select {
	case err := <-done:
		t.Fatalf("a subscription on an idle log ended: %v", err)
	case <-time.After(5 * stallAfter):
	}

	// The link hangs while the log grows: the watchdog stops the consumer
	// and Subscribe recreates it; once the link is back, the records
	// arrive, once each, on the same subscription.
	proxy.frozen.Store(true)
	if _, err := writer.Append(ctx, "a", eventstore.Any, storetest.Event(2), storetest.Event(3)); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "a stall", func() bool { return hung.stalls.Load() >= 1 })
	proxy.frozen.Store(false)
	testwait.For(t, "the records appended while the link hung", func() bool { return got.Load() == 3 })
	select {
	case err := <-done:
		t.Fatalf("the subscription ended after a stall it recovered from: %v", err)
	default:
	}

	// The link hangs for good: after maxStalls consumers in a row
	// delivered nothing, Subscribe gives up with ErrStalled.
	proxy.frozen.Store(true)
	stalls := hung.stalls.Load()
	hungAt := time.Now()
	if _, err := writer.Append(ctx, "a", eventstore.Any, storetest.Event(4)); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-done:
	case <-time.After(20 * stallAfter * maxStalls):
		t.Fatalf("the subscription did not end %v after its link hung", 20*stallAfter*maxStalls)
	}
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("the hung subscription ended with %v, want ErrStalled", err)
	}
	t.Logf("ended %v after the link hung: %v", time.Since(hungAt).Round(time.Millisecond), err)
	if n := hung.stalls.Load() - stalls; n != maxStalls {
		t.Fatalf("%d stalls before the end, want %d", n, maxStalls)
	}

	// The link comes back; subscribing again from the position delivers
	// what was missed, once.
	proxy.frozen.Store(false)
	proxy.cut() // what a peer's reset does at last
	done = sub(got.Load() + 1)
	testwait.For(t, "the record appended while the link hung", func() bool { return got.Load() == 4 })
	select {
	case err := <-done:
		t.Fatalf("the new subscription ended: %v", err)
	default:
	}
}

// TestStallWatchLogAhead: the watchdog ends a subscription that delivers
// nothing while the stream leader answers with a log past its position
// (the ordered consumer that stopped after its node died), and leaves
// alone one whose subscriber is busy with a record.
func TestStallWatchLogAhead(t *testing.T) {
	srv := startServer(t, "watch", t.TempDir(), 0, nil)
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const stallAfter = 300 * time.Millisecond
	s, err := Open(ctx, clientURL(srv), &Options{StallAfter: stallAfter})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(ctx, "a", eventstore.Any, storetest.Event(1), storetest.Event(2)); err != nil {
		t.Fatal(err)
	}
	watch := func(busy bool) error {
		wctx, stop := context.WithCancelCause(ctx)
		defer stop(nil)
		w := &stallWatch{}
		w.next.Store(2) // one record delivered, the second one never comes
		w.busy.Store(busy)
		done := make(chan struct{})
		go func() { defer close(done); s.watchStall(wctx, w, stop) }()
		select {
		case <-done:
		case <-time.After(10 * stallAfter):
			stop(nil)
			<-done
		}
		return context.Cause(wctx)
	}
	err = watch(false)
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("watchdog over a log ahead of the subscriber: %v, want ErrStalled", err)
	}
	t.Log(err)
	if err := watch(true); !errors.Is(err, context.Canceled) {
		t.Fatalf("watchdog over a busy subscriber: %v, want no stall", err)
	}
}

// TestAttemptTimeout: a lost request costs a fifth of RequestTimeout the
// first time, and later attempts get up to the whole bound.
func TestAttemptTimeout(t *testing.T) {
	s := &Store{opts: Options{RequestTimeout: 5 * time.Second}}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second}
	for n, w := range want {
		if got := s.attemptTimeout(n); got != w {
			t.Errorf("attempt %d: %v, want %v", n, got, w)
		}
	}
}

// TestBoundedReadRetriesDroppedConsumer: a read whose consumer failed
// (the library could not recreate it) runs again with a new one; any
// other error, and a failure past the bound, ends the read.
func TestBoundedReadRetriesDroppedConsumer(t *testing.T) {
	s := &Store{opts: Options{RequestTimeout: 100 * time.Millisecond, RetryFor: 300 * time.Millisecond}, done: make(chan struct{})}
	ctx := context.Background()
	dropped := fmt.Errorf("%w: nats: no heartbeat received", errDropped)

	calls := 0
	err := s.boundedRead(ctx, "read", func(context.Context) error {
		if calls++; calls == 1 {
			return dropped
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("a dropped consumer: %v after %d calls, want success at the second", err, calls)
	}

	calls = 0
	other := errors.New("permission denied")
	err = s.boundedRead(ctx, "read", func(context.Context) error { calls++; return other })
	if !errors.Is(err, other) || calls != 1 {
		t.Fatalf("another error: %v after %d calls, want it at once", err, calls)
	}

	calls = 0
	start := time.Now()
	err = s.boundedRead(ctx, "read", func(context.Context) error { calls++; return dropped })
	if err == nil || calls < 2 {
		t.Fatalf("a consumer that keeps failing: %v after %d calls", err, calls)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the read ended %v after it started; its bound is %v", d, s.opts.RetryFor+s.opts.RequestTimeout)
	}
}
