package esdb

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/storetest"
)

// TestSubscriptionResumesAfterDrops drops the subscriptions of the fake
// server again and again, during the catch-up and while live, and makes
// some resubscriptions fail: the handler must still see every event once,
// in order, and Subscribe must keep running.
func TestSubscriptionResumesAfterDrops(t *testing.T) {
	db := newFakeDB()
	s := openFake(t, db)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const before, during = 200, 200
	for i := 0; i < before; i++ {
		if _, err := s.Append(ctx, "x", eventstore.Any, storetest.Event(i)); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var got []eventstore.Record
	more := make(chan struct{}, 1)
	subCtx, subCancel := context.WithCancel(ctx)
	defer subCancel()
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(subCtx, 1, func(r eventstore.Record) error {
			mu.Lock()
			got = append(got, r)
			n := len(got)
			mu.Unlock()
			if n%50 == 0 {
				// Drop from inside the handler: the catch-up is cut in
				// the middle of the backlog.
				db.dropSubscriptions()
			}
			select {
			case more <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	for i := 0; i < during; i++ {
		if i%40 == 0 {
			db.fault(func(db *fakeDB) { db.failSubscribes = 2 })
			db.dropSubscriptions()
		}
		if _, err := s.Append(ctx, "x", eventstore.Any, storetest.Event(before+i)); err != nil {
			t.Fatal(err)
		}
	}
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= before+during {
			break
		}
		select {
		case <-more:
		case err := <-done:
			t.Fatalf("Subscribe ended after %d events: %v", n, err)
		case <-ctx.Done():
			t.Fatalf("subscription delivered %d of %d events", n, before+during)
		}
	}
	subCancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe returned %v, want context.Canceled", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != before+during {
		t.Fatalf("%d events delivered, want %d", len(got), before+during)
	}
	for i, r := range got {
		if r.Position != uint64(i+1) || r.Version != uint64(i+1) {
			t.Fatalf("event %d: position %d version %d (gap or duplicate)", i, r.Position, r.Version)
		}
	}
	if s.Drops() < 8 { // one per 50 events delivered, at least
		t.Fatalf("%d drops: the test did not drop the subscription", s.Drops())
	}
}

// TestSubscriptionGivesUp: when no resubscription gets through for
// resubscribeFor, Subscribe returns the drop instead of hanging.
func TestSubscriptionGivesUp(t *testing.T) {
	old := resubscribeFor
	resubscribeFor = 300 * time.Millisecond
	defer func() { resubscribeFor = old }()
	db := newFakeDB()
	s := openFake(t, db)
	defer s.Close()
	db.fault(func(db *fakeDB) { db.failSubscribes = 1 << 30 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := s.Subscribe(ctx, 1, func(eventstore.Record) error { return nil })
	if err == nil || errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errTimeout) {
		t.Fatalf("Subscribe with a server that never accepts it: %v, want the drop", err)
	}
}

// TestAppendFollowerAndTimeout: appends refused by a follower are retried;
// appends written but answered with a timeout are retried without a second
// copy and without a conflict with themselves.
func TestAppendFollowerAndTimeout(t *testing.T) {
	db := newFakeDB()
	s := openFake(t, db)
	defer s.Close()
	ctx := context.Background()
	db.fault(func(db *fakeDB) { db.refuseAppends = 3 })
	if v, err := s.Append(ctx, "x", eventstore.NoStream, storetest.Event(0)); err != nil || v != 1 {
		t.Fatalf("append refused by followers: %d, %v", v, err)
	}
	db.fault(func(db *fakeDB) { db.timeoutAppends = 1 })
	if v, err := s.Append(ctx, "x", 1, storetest.Event(1), storetest.Event(2)); err != nil || v != 3 {
		t.Fatalf("append whose answer timed out: %d, %v", v, err)
	}
	db.fault(func(db *fakeDB) { db.timeoutAppends, db.refuseAppends = 1, 0 })
	if v, err := s.Append(ctx, "y", eventstore.NoStream, storetest.Event(3)); err != nil || v != 1 {
		t.Fatalf("NoStream append whose answer timed out: %d, %v", v, err)
	}
	all, err := s.ReadAll(ctx, 1, 100)
	if err != nil || len(all) != 4 {
		t.Fatalf("log holds %d events (%v), want 4: a retried append was written twice", len(all), err)
	}
	if _, err := eventstore.Verify(ctx, s, nil); err != nil {
		t.Fatal(err)
	}
	// A follower that never lets go: the append fails, with the cause.
	old := appendRetryFor
	appendRetryFor = 300 * time.Millisecond
	defer func() { appendRetryFor = old }()
	db.fault(func(db *fakeDB) { db.refuseAppends = 1 << 30 })
	if _, err := s.Append(ctx, "x", 3, storetest.Event(4)); !errors.Is(err, errNotLeader) {
		t.Fatalf("append to followers only: %v, want errNotLeader", err)
	}
}
