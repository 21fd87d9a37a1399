package esdb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/storetest"
)

// fakeDB is an in-memory EventStoreDB with the semantics the store relies
// on: per-stream revisions from 0, expected-revision checks, a global $all
// order, truncation, and catch-up subscriptions to $all that start after a
// position.
type fakeDB struct {
	mu       sync.Mutex
	streams  map[string][]*esdb.RecordedEvent
	all      []*esdb.RecordedEvent
	truncate map[string]uint64
	changed  chan struct{}
	// beforeAppend, if set, runs before each append to the log (to let a
	// "second process" slip an append in).
	beforeAppend func(stream string)

	// Faults of a cluster, set by tests under mu.
	// refuseAppends: the next appends are refused as by a follower.
	refuseAppends int
	// timeoutAppends: the next appends are written, then answer a timeout.
	timeoutAppends int
	// failSubscribes: the next subscriptions fail to start.
	failSubscribes int
	// dropped is closed (and replaced) by dropSubscriptions.
	dropped chan struct{}
}

func newFakeDB() *fakeDB {
	return &fakeDB{streams: map[string][]*esdb.RecordedEvent{}, truncate: map[string]uint64{}, changed: make(chan struct{}),
		dropped: make(chan struct{})}
}

// errFakeDropped is how the fake ends a dropped subscription.
var errFakeDropped = errors.New("fake: subscription dropped by the server")

// dropSubscriptions ends every live subscription with an error, as a
// server restart or a leader change does.
func (db *fakeDB) dropSubscriptions() {
	db.mu.Lock()
	close(db.dropped)
	db.dropped = make(chan struct{})
	db.mu.Unlock()
}

// fault sets the fault counters under the lock.
func (db *fakeDB) fault(f func(db *fakeDB)) {
	db.mu.Lock()
	f(db)
	db.mu.Unlock()
}

// sameEvents reports whether evs were already appended to stream at
// revision first onward: esdb then treats the append as a repeat
// (idempotent write) and succeeds without writing.
func (db *fakeDB) sameEvents(stream string, first uint64, evs []esdb.EventData) bool {
	cur := db.streams[stream]
	if first+uint64(len(evs)) > uint64(len(cur)) {
		return false
	}
	for i, ev := range evs {
		if cur[first+uint64(i)].EventID != ev.EventID {
			return false
		}
	}
	return true
}

// conn is one client connection (one process) to the fake.
type fakeConn struct {
	db     *fakeDB
	mu     sync.Mutex
	closed chan struct{}
}

func (db *fakeDB) connect() *fakeConn { return &fakeConn{db: db, closed: make(chan struct{})} }

func (c *fakeConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

func (c *fakeConn) appendEvents(ctx context.Context, stream string, expected esdb.ExpectedRevision, evs []esdb.EventData) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if c.isClosed() {
		return 0, errConnClosed
	}
	if hook := c.db.beforeAppend; hook != nil {
		hook(stream)
	}
	db := c.db
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.refuseAppends > 0 {
		db.refuseAppends--
		return 0, errNotLeader
	}
	rev, err := db.appendLocked(stream, expected, evs)
	if err == nil && db.timeoutAppends > 0 {
		db.timeoutAppends--
		return 0, errTimeout
	}
	return rev, err
}

func (db *fakeDB) appendLocked(stream string, expected esdb.ExpectedRevision, evs []esdb.EventData) (uint64, error) {
	cur := uint64(len(db.streams[stream]))
	// A repeat of an append already written after the same expected
	// revision succeeds again (esdb's idempotent writes).
	if r, ok := expected.(esdb.StreamRevision); ok && cur > r.Value+1 && db.sameEvents(stream, r.Value+1, evs) {
		return r.Value + uint64(len(evs)), nil
	}
	if _, ok := expected.(esdb.NoStream); ok && cur > 0 && db.sameEvents(stream, 0, evs) {
		return uint64(len(evs)) - 1, nil
	}
	switch e := expected.(type) {
	case esdb.Any:
	case esdb.NoStream:
		if cur != 0 {
			return 0, errWrongExpected
		}
	case esdb.StreamExists:
		if cur == 0 {
			return 0, errWrongExpected
		}
	case esdb.StreamRevision:
		if cur == 0 || cur-1 != e.Value {
			return 0, errWrongExpected
		}
	default:
		return 0, fmt.Errorf("fake: unknown expected revision %T", expected)
	}
	for i, ev := range evs {
		commit := uint64(len(db.all)+1) * 100
		re := &esdb.RecordedEvent{
			EventID: ev.EventID, EventType: ev.EventType, StreamID: stream, EventNumber: cur + uint64(i),
			Position: esdb.Position{Commit: commit, Prepare: commit},
			Data:     append([]byte(nil), ev.Data...), UserMetadata: append([]byte(nil), ev.Metadata...),
		}
		db.streams[stream] = append(db.streams[stream], re)
		db.all = append(db.all, re)
	}
	close(db.changed)
	db.changed = make(chan struct{})
	return cur + uint64(len(evs)) - 1, nil
}

func (c *fakeConn) readEvents(ctx context.Context, stream string, from esdb.StreamPosition, backwards bool, count uint64) ([]*esdb.RecordedEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.isClosed() {
		return nil, errConnClosed
	}
	db := c.db
	db.mu.Lock()
	defer db.mu.Unlock()
	evs := db.streams[stream]
	tb := db.truncate[stream]
	var out []*esdb.RecordedEvent
	if !backwards {
		start := uint64(0)
		if r, ok := from.(esdb.StreamRevision); ok {
			start = r.Value
		}
		for i := max(start, tb); i < uint64(len(evs)) && uint64(len(out)) < count; i++ {
			out = append(out, copyEvent(evs[i]))
		}
		return out, nil
	}
	start := int64(len(evs)) - 1
	if r, ok := from.(esdb.StreamRevision); ok {
		start = min(start, int64(r.Value))
	}
	for i := start; i >= int64(tb) && uint64(len(out)) < count; i-- {
		out = append(out, copyEvent(evs[i]))
	}
	return out, nil
}

// copyEvent is what a read over the network gives: fresh buffers.
func copyEvent(e *esdb.RecordedEvent) *esdb.RecordedEvent {
	c := *e
	c.Data = append([]byte(nil), e.Data...)
	c.UserMetadata = append([]byte(nil), e.UserMetadata...)
	return &c
}

type fakeSub struct {
	c       *fakeConn
	ctx     context.Context
	next    int
	stream  string
	dropped chan struct{}
}

func (c *fakeConn) subscribeAll(ctx context.Context, from esdb.AllPosition, stream string) (subscription, error) {
	if c.isClosed() {
		return nil, errConnClosed
	}
	c.db.mu.Lock()
	dropped := c.db.dropped
	fail := c.db.failSubscribes > 0
	if fail {
		c.db.failSubscribes--
	}
	c.db.mu.Unlock()
	if fail {
		return nil, errTimeout
	}
	sub := &fakeSub{c: c, ctx: ctx, stream: stream, dropped: dropped}
	if p, ok := from.(esdb.Position); ok {
		c.db.mu.Lock()
		for sub.next < len(c.db.all) && c.db.all[sub.next].Position.Commit <= p.Commit {
			sub.next++ // subscriptions start after the given position
		}
		c.db.mu.Unlock()
	}
	return sub, nil
}

func (s *fakeSub) recv() (*esdb.RecordedEvent, error) {
	db := s.c.db
	for {
		select {
		case <-s.dropped: // also during a catch-up
			return nil, errFakeDropped
		default:
		}
		db.mu.Lock()
		if s.next < len(db.all) {
			e := db.all[s.next]
			s.next++
			db.mu.Unlock()
			if e.StreamID == s.stream {
				return copyEvent(e), nil
			}
			continue
		}
		changed := db.changed
		db.mu.Unlock()
		select {
		case <-changed:
		case <-s.dropped:
			return nil, errFakeDropped
		case <-s.ctx.Done():
			return nil, s.ctx.Err()
		case <-s.c.closed:
			return nil, errConnClosed
		}
	}
}

func (s *fakeSub) close() {}

func (c *fakeConn) truncateBefore(ctx context.Context, stream string, rev uint64) error {
	if c.isClosed() {
		return errConnClosed
	}
	c.db.mu.Lock()
	defer c.db.mu.Unlock()
	c.db.truncate[stream] = rev
	return nil
}

func (c *fakeConn) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.isClosed() {
		close(c.closed)
	}
	return nil
}

func openFake(t *testing.T, db *fakeDB) *Store {
	t.Helper()
	s, err := newStore(context.Background(), db.connect(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConformanceFake runs the whole store logic (index, catch-up, expected
// revisions, subscriptions, keyring) against the fake server.
func TestConformanceFake(t *testing.T) {
	storetest.RunBackend(t, storetest.Backend{
		Open: func(t *testing.T) (eventstore.Store, func() eventstore.Store) {
			db := newFakeDB()
			return openFake(t, db), func() eventstore.Store { return openFake(t, db) }
		},
	})
}

// TestTwoProcesses appends through two stores on one server: each sees the
// other's events, an exact expected version made stale by the other
// process conflicts, and Any retries onto the new head.
func TestTwoProcesses(t *testing.T) {
	ctx := context.Background()
	db := newFakeDB()
	a, b := openFake(t, db), openFake(t, db)
	defer a.Close()
	defer b.Close()
	if _, err := a.Append(ctx, "x", eventstore.NoStream, storetest.Event(0)); err != nil {
		t.Fatal(err)
	}
	// b learns of a's event when it catches up before deciding.
	if _, err := b.Append(ctx, "x", eventstore.NoStream, storetest.Event(1)); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("b: NoStream on a's stream: %v, want ErrConflict", err)
	}
	if v, err := b.Append(ctx, "x", 1, storetest.Event(1)); err != nil || v != 2 {
		t.Fatalf("b: exact append: %d, %v", v, err)
	}
	// a now holds a stale index; the log's expected revision makes the
	// server refuse, a catches up and reports the real conflict.
	_, err := a.Append(ctx, "x", 1, storetest.Event(2))
	var ce *eventstore.ConflictError
	if !errors.As(err, &ce) || ce.Actual != 2 {
		t.Fatalf("a: stale exact append: %v, want a conflict at version 2", err)
	}
	// Another process slips an append in right before a's write: Any
	// retries and lands after it.
	slipped := false
	db.beforeAppend = func(stream string) {
		if !slipped && stream == DefaultLogStream {
			slipped = true
			if _, err := b.Append(ctx, "y", eventstore.Any, storetest.Event(3)); err != nil {
				t.Error(err)
			}
		}
	}
	if v, err := a.Append(ctx, "x", eventstore.Any, storetest.Event(4)); err != nil || v != 3 {
		t.Fatalf("a: Any append racing another process: %d, %v", v, err)
	}
	db.beforeAppend = nil
	all, err := a.ReadAll(ctx, 1, 100)
	if err != nil || len(all) != 4 {
		t.Fatalf("log: %d records, %v", len(all), err)
	}
	if all[2].Stream != "y" || all[3].Stream != "x" || all[3].Version != 3 || all[3].Position != 4 {
		t.Fatalf("log order: %+v", all[2:])
	}
	for _, s := range []*Store{a, b} {
		if _, err := eventstore.Verify(ctx, s, nil); err != nil {
			t.Fatal(err)
		}
		recs, err := s.ReadStream(ctx, "x", 1)
		if err != nil || len(recs) != 3 {
			t.Fatalf("ReadStream: %d records, %v", len(recs), err)
		}
	}
}

// TestKeyringTruncated checks that each save truncates the older entries.
func TestKeyringTruncated(t *testing.T) {
	ctx := context.Background()
	db := newFakeDB()
	s := openFake(t, db)
	defer s.Close()
	for _, k := range []string{"one", "two", "three"} {
		if err := s.SaveKeyring(ctx, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := s.srv.readEvents(ctx, "$e4c2-keyring", esdb.Start{}, false, 10)
	if err != nil || len(evs) != 1 || string(evs[0].Data) != "three" {
		t.Fatalf("keyring stream still holds %d readable entries (%v)", len(evs), err)
	}
}
