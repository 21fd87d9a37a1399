package notify

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/e4c2/e4c2/eventstore"
)

// TestNoLostWakeup publishes while a subscriber is between reading and
// waiting: the channel taken before the read must fire.
func TestNoLostWakeup(t *testing.T) {
	h := NewHead(0)
	pos, ch := h.Current()
	if pos != 0 {
		t.Fatalf("head %d", pos)
	}
	h.Publish(3)
	select {
	case <-ch:
	default:
		t.Fatal("a publication after Current did not close the channel")
	}
	if p, _ := h.Current(); p != 3 {
		t.Fatalf("head %d, want 3", p)
	}
	h.Publish(2) // never moves back
	if p, _ := h.Current(); p != 3 {
		t.Fatalf("head moved back to %d", p)
	}
}

// TestSubscribeLoop drives Subscribe with a fake log that grows while the
// subscriber runs, and checks order, no gap, no duplicate and Close.
func TestSubscribeLoop(t *testing.T) {
	h := NewHead(0)
	var mu sync.Mutex
	var log []eventstore.Record
	readAll := func(ctx context.Context, from uint64, limit int) ([]eventstore.Record, error) {
		mu.Lock()
		defer mu.Unlock()
		if from > uint64(len(log)) {
			return nil, nil
		}
		end := min(uint64(len(log)), from-1+uint64(limit))
		return append([]eventstore.Record(nil), log[from-1:end]...), nil
	}
	appendOne := func() {
		mu.Lock()
		log = append(log, eventstore.Record{Position: uint64(len(log)) + 1})
		n := uint64(len(log))
		mu.Unlock()
		h.Publish(n)
	}
	for i := 0; i < 2500; i++ {
		appendOne()
	}
	got := make(chan uint64, 10000)
	done := make(chan error, 1)
	go func() {
		done <- Subscribe(context.Background(), h, readAll, 0, func(r eventstore.Record) error {
			got <- r.Position
			return nil
		})
	}()
	for i := 0; i < 2500; i++ {
		appendOne()
	}
	for want := uint64(1); want <= 5000; want++ {
		select {
		case p := <-got:
			if p != want {
				t.Fatalf("got position %d, want %d", p, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("stalled before position %d", want)
		}
	}
	h.Close()
	if err := <-done; !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}
