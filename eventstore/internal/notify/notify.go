package notify

import (
	"context"
	"fmt"
	"sync"

	"github.com/e4c2/e4c2/eventstore"
)

// Head is a broadcast of the last committed position. Waiters take a
// channel that is closed at the next change, so a waiter that took the
// channel before reading the log cannot miss a commit that happens after.
type Head struct {
	mu     sync.Mutex
	pos    uint64
	ch     chan struct{}
	closed chan struct{}
	once   sync.Once
}

// NewHead returns a broadcast starting at pos.
func NewHead(pos uint64) *Head {
	return &Head{pos: pos, ch: make(chan struct{}), closed: make(chan struct{})}
}

// Publish records a new head position and wakes every waiter.
func (h *Head) Publish(pos uint64) {
	h.mu.Lock()
	if pos > h.pos {
		h.pos = pos
		close(h.ch)
		h.ch = make(chan struct{})
	}
	h.mu.Unlock()
}

// Current returns the head position and a channel closed at the next change.
func (h *Head) Current() (uint64, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pos, h.ch
}

// Close wakes every waiter for good: the store is closing.
func (h *Head) Close() { h.once.Do(func() { close(h.closed) }) }

// Closed is closed when Close was called.
func (h *Head) Closed() <-chan struct{} { return h.closed }

// PageSize is the ReadAll page used by Subscribe.
const PageSize = 1024

// Subscribe implements Store.Subscribe on top of ReadAll and a Head: it
// reads pages from the store until it reaches the head it saw before the
// read, then waits for the next publication. Catch-up and live are the same
// loop, so there is no switch-over in which an event could be lost or
// delivered twice: the next position to deliver only ever advances by one
// per delivered record.
func Subscribe(ctx context.Context, h *Head, readAll func(ctx context.Context, from uint64, limit int) ([]eventstore.Record, error),
	from uint64, fn func(eventstore.Record) error) error {
	if from == 0 {
		from = 1
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case <-h.closed:
			return eventstore.ErrClosed
		default:
		}
		head, changed := h.Current()
		for from <= head {
			page, err := readAll(ctx, from, PageSize)
			if err != nil {
				return err
			}
			if len(page) == 0 {
				break
			}
			for i := range page {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := fn(page[i]); err != nil {
					return fmt.Errorf("eventstore: subscriber: %w", err)
				}
				from = page[i].Position + 1
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-h.closed:
			return eventstore.ErrClosed
		case <-changed:
		}
	}
}
