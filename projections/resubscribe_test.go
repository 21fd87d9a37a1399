package projections_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/memstore"
	"github.com/e4c2/e4c2/internal/testwait"
	"github.com/e4c2/e4c2/projections"
)

var errDropped = errors.New("test: subscription dropped")

// droppingStore ends subscriptions with errDropped on demand, and can
// refuse new ones, as a store whose server went away does.
type droppingStore struct {
	eventstore.Store
	mu     sync.Mutex
	drop   chan struct{}
	refuse bool
	subs   int
}

func (s *droppingStore) dropAll(refuse bool) {
	s.mu.Lock()
	close(s.drop)
	s.drop, s.refuse = make(chan struct{}), refuse
	s.mu.Unlock()
}

func (s *droppingStore) allow() {
	s.mu.Lock()
	s.refuse = false
	s.mu.Unlock()
}

func (s *droppingStore) Subscribe(ctx context.Context, from uint64, fn func(eventstore.Record) error) error {
	s.mu.Lock()
	drop, refuse := s.drop, s.refuse
	s.subs++
	s.mu.Unlock()
	if refuse {
		return errDropped
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-drop:
			cancel()
		case <-sctx.Done():
		}
	}()
	err := s.Store.Subscribe(sctx, from, fn)
	if ctx.Err() == nil && errors.Is(err, context.Canceled) {
		return errDropped
	}
	return err
}

// TestRunnerResubscribes: a subscription the store drops does not end the
// runner; it reports the drop while it cannot subscribe, then follows the
// log again from where it was, each record applied once.
func TestRunnerResubscribes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store := &droppingStore{Store: memstore.New(), drop: make(chan struct{})}
	appendTopics(t, store, 0, 3)
	c := &counter{}
	r := projections.NewRunner(store, nil, c)
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	if err := r.WaitPosition(ctx, 3); err != nil {
		t.Fatal(err)
	}
	store.dropAll(true) // dropped, and no new subscription gets through
	testwait.For(t, "the drop to be reported", func() bool { return errors.Is(r.SubscriptionErr(), errDropped) })
	appendTopics(t, store, 3, 6)
	store.allow()
	if err := r.WaitPosition(ctx, 6); err != nil {
		t.Fatal(err)
	}
	if r.SubscriptionErr() != nil {
		t.Fatalf("following again, yet SubscriptionErr is %v", r.SubscriptionErr())
	}
	store.dropAll(false) // dropped once, resubscribed at once
	testwait.For(t, "the second drop", func() bool { return r.Resubscriptions() >= 2 })
	appendTopics(t, store, 6, 8)
	if err := r.WaitPosition(ctx, 8); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.applied {
		if p != uint64(i+1) {
			t.Fatalf("applied positions %v: gap or duplicate", c.applied)
		}
	}
	if len(c.applied) != 8 {
		t.Fatalf("applied %d records, want 8", len(c.applied))
	}
}
