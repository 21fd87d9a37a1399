package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/e4c2/e4c2/eventstore"
)

// Opener opens a fresh, empty store for one test. reopen, if not nil,
// opens the same store again after it was closed (durable backends); it
// is nil for backends that keep nothing (memstore).
type Opener func(t *testing.T) (s eventstore.Store, reopen func() eventstore.Store)

// Backend describes a backend to the suite.
type Backend struct {
	Open Opener
	// Tamper, if not nil, alters the data of the record at position pos
	// behind the store's back (the hashes stay as they were) and returns
	// the store to verify, which may be a reopened one.
	Tamper func(t *testing.T, s eventstore.Store, reopen func() eventstore.Store, pos uint64) eventstore.Store
	// Timeout bounds the waits of the subscription tests (default 20 s).
	Timeout time.Duration
}

// Run runs the conformance suite with open.
func Run(t *testing.T, open Opener) { RunBackend(t, Backend{Open: open}) }

// RunBackend runs the conformance suite on b.
func RunBackend(t *testing.T, b Backend) {
	if b.Timeout == 0 {
		b.Timeout = 20 * time.Second
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, b Backend)
	}{
		{"AppendRead", testAppendRead},
		{"ExpectedMissingStream", testExpectedMissing},
		{"ExpectedExistingStream", testExpectedExisting},
		{"EmptyAppend", testEmptyAppend},
		{"InvalidAppend", testInvalidAppend},
		{"RacingWriters", testRace},
		{"ReadAllOrderPaging", testReadAll},
		{"SubscribeCatchUpLive", testSubscribe},
		{"SubscribeFromMiddle", testSubscribeFrom},
		{"SubscribeHandlerError", testSubscribeHandlerError},
		{"Cancellation", testCancel},
		{"Close", testClose},
		{"Reopen", testReopen},
		{"HashChain", testChain},
		{"Tamper", testTamper},
		{"Keyring", testKeyring},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
	}
}

// open opens a store and closes it at the end of the test.
func open(t *testing.T, b Backend) (eventstore.Store, func() eventstore.Store) {
	t.Helper()
	s, reopen := b.Open(t)
	return s, reopen
}

func closeAtEnd(t *testing.T, s eventstore.Store) {
	t.Cleanup(func() { _ = s.Close() })
}

// uniq returns a stream name no other test or run uses.
func uniq(name string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return name + "-" + hex.EncodeToString(b[:])
}

// Event returns a test event with a fresh id and every metadata field set.
func Event(i int) eventstore.EventData {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		panic(err)
	}
	return eventstore.EventData{
		ID:   hex.EncodeToString(id[:]),
		Type: "test.event.v1",
		Data: []byte(fmt.Sprintf(`{"n":%d}`, i)),
		Meta: eventstore.Metadata{
			Time:          time.Date(2026, 1, 2, 3, 4, 5, 6000*i+7, time.UTC),
			Actor:         "cli:tester",
			CausationID:   fmt.Sprintf("cause-%d", i),
			CorrelationID: "corr-1",
			Suite:         "standard",
			Mode:          "sk",
		},
	}
}

func events(n, start int) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = Event(start + i)
	}
	return out
}

// head returns the position of the last record of the log.
func head(t *testing.T, s eventstore.Store) uint64 {
	t.Helper()
	var last uint64
	from := uint64(1)
	for {
		page, err := s.ReadAll(context.Background(), from, 10000)
		if err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		if len(page) == 0 {
			return last
		}
		last = page[len(page)-1].Position
		from = last + 1
	}
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, expected int64, evs ...eventstore.EventData) uint64 {
	t.Helper()
	v, err := s.Append(context.Background(), stream, expected, evs...)
	if err != nil {
		t.Fatalf("Append(%q, %d): %v", stream, expected, err)
	}
	return v
}

// sameEvent reports how got differs from want, or "".
func sameEvent(got eventstore.Record, want eventstore.EventData) string {
	switch {
	case got.ID != want.ID:
		return fmt.Sprintf("id %q, want %q", got.ID, want.ID)
	case got.Type != want.Type:
		return fmt.Sprintf("type %q, want %q", got.Type, want.Type)
	case !bytes.Equal(got.Data, want.Data):
		return fmt.Sprintf("data %q, want %q", got.Data, want.Data)
	case !got.Meta.Time.Equal(want.Meta.Time):
		return fmt.Sprintf("time %v, want %v", got.Meta.Time, want.Meta.Time)
	case got.Meta.Actor != want.Meta.Actor || got.Meta.CausationID != want.Meta.CausationID ||
		got.Meta.CorrelationID != want.Meta.CorrelationID || got.Meta.Suite != want.Meta.Suite ||
		got.Meta.Mode != want.Meta.Mode:
		return fmt.Sprintf("metadata %+v, want %+v", got.Meta, want.Meta)
	}
	return ""
}

func checkConflict(t *testing.T, err error, stream string, expected int64, actual uint64) {
	t.Helper()
	if !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("Append(%q, %d): error %v, want ErrConflict", stream, expected, err)
	}
	var ce *eventstore.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("Append(%q, %d): error %T is not a *ConflictError", stream, expected, err)
	}
	if ce.Stream != stream || ce.Expected != expected || ce.Actual != actual {
		t.Fatalf("conflict %+v, want stream %q expected %d actual %d", ce, stream, expected, actual)
	}
}

func testAppendRead(t *testing.T, b Backend) {
	s, _ := open(t, b)
	closeAtEnd(t, s)
	ctx := context.Background()
	a, c := uniq("a"), uniq("c")
	evA := events(3, 0)
	if v := mustAppend(t, s, a, eventstore.NoStream, evA...); v != 3 {
		t.Fatalf("Append returned version %d, want 3", v)
	}
	evC := events(2, 10)
	if v := mustAppend(t, s, c, eventstore.Any, evC...); v != 2 {
		t.Fatalf("Append returned version %d, want 2", v)
	}
	got, err := s.ReadStream(ctx, a, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("ReadStream: %d records, want 3", len(got))
	}
	for i, r := range got {
		if d := sameEvent(r, evA[i]); d != "" {
			t.Fatalf("record %d: %s", i, d)
		}
		if r.Stream != a || r.Version != uint64(i+1) {
			t.Fatalf("record %d: stream %q version %d", i, r.Stream, r.Version)
		}
		if i > 0 && r.Position <= got[i-1].Position {
			t.Fatalf("positions not increasing: %d after %d", r.Position, got[i-1].Position)
		}
	}
	got, err = s.ReadStream(ctx, a, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Version != 2 || got[0].ID != evA[1].ID {
		t.Fatalf("ReadStream from 2: %d records", len(got))
	}
	got, err = s.ReadStream(ctx, a, 4)
	if err != nil || len(got) != 0 {
		t.Fatalf("ReadStream past the end: %d records, %v", len(got), err)
	}
	got, err = s.ReadStream(ctx, uniq("missing"), 1)
	if err != nil || len(got) != 0 {
		t.Fatalf("ReadStream of a missing stream: %d records, %v", len(got), err)
	}
	// A reader changing what it got must not change the log.
	got, _ = s.ReadStream(ctx, c, 1)
	if len(got) > 0 && len(got[0].Data) > 0 {
		got[0].Data[0] ^= 0xff
	}
	again, _ := s.ReadStream(ctx, c, 1)
	if len(again) != 2 || !bytes.Equal(again[0].Data, evC[0].Data) {
		t.Fatal("changing a read record changed the stored one")
	}
}

func testExpectedMissing(t *testing.T, b Backend) {
	s, _ := open(t, b)
	closeAtEnd(t, s)
	ctx := context.Background()
	x := uniq("x")
	_, err := s.Append(ctx, x, 1, Event(0))
	checkConflict(t, err, x, 1, 0)
	_, err = s.Append(ctx, x, 5, Event(0))
	checkConflict(t, err, x, 5, 0)
	if v := mustAppend(t, s, x, eventstore.NoStream, Event(1)); v != 1 {
		t.Fatalf("NoStream append: version %d", v)
	}
	y := uniq("y")
	if v := mustAppend(t, s, y, eventstore.Any, Event(2)); v != 1 {
		t.Fatalf("Any append on a missing stream: version %d", v)
	}
	recs, err := s.ReadStream(ctx, x, 1)
	if err != nil || len(recs) != 1 {
		t.Fatalf("stream holds %d records (%v), want 1: a conflicting append wrote", len(recs), err)
	}
}

func testExpectedExisting(t *testing.T, b Backend) {
	s, _ := open(t, b)
	closeAtEnd(t, s)
	ctx := context.Background()
	x := uniq("x")
	mustAppend(t, s, x, eventstore.NoStream, events(2, 0)...)
	if v := mustAppend(t, s, x, 2, Event(2)); v != 3 {
		t.Fatalf("exact append: version %d, want 3", v)
	}
	_, err := s.Append(ctx, x, 2, Event(3))
	checkConflict(t, err, x, 2, 3)
	_, err = s.Append(ctx, x, eventstore.NoStream, Event(3))
	checkConflict(t, err, x, eventstore.NoStream, 3)
	_, err = s.Append(ctx, x, 4, Event(3))
	checkConflict(t, err, x, 4, 3)
	if v := mustAppend(t, s, x, eventstore.Any, events(2, 4)...); v != 5 {
		t.Fatalf("Any append: version %d, want 5", v)
	}
	recs, err := s.ReadStream(ctx, x, 1)
	if err != nil || len(recs) != 5 {
		t.Fatalf("stream holds %d records (%v), want 5", len(recs), err)
	}
	for i, r := range recs {
		if r.Version != uint64(i+1) {
			t.Fatalf("record %d has version %d", i, r.Version)
		}
	}
}

func testEmptyAppend(t *testing.T, b Backend) {
	s, _ := open(t, b)
	closeAtEnd(t, s)
	ctx := context.Background()
	x := uniq("x")
	mustAppend(t, s, x, eventstore.NoStream, events(2, 0)...)
	// No events: only the expected version is checked.
	if v, err := s.Append(ctx, x, 2); err != nil || v != 2 {
		t.Fatalf("empty append: %d, %v; want 2, nil", v, err)
	}
	_, err := s.Append(ctx, x, 1)
	checkConflict(t, err, x, 1, 2)
}

func testInvalidAppend(t *testing.T, b Backend) {
	s, _ := open(t, b)
	closeAtEnd(t, s)
	ctx := context.Background()
	bad := Event(0)
	bad.ID = ""
	for name, call := range map[string]func() error{
		"empty stream": func() error { _, err := s.Append(ctx, "", eventstore.Any, Event(0)); return err },
		"no id":        func() error { _, err := s.Append(ctx, uniq("x"), eventstore.Any, bad); return err },
		"expected -2":  func() error { _, err := s.Append(ctx, uniq("x"), -2, Event(0)); return err },
	} {
		if err := call(); !errors.Is(err, eventstore.ErrInvalidEvent) {
			t.Errorf("%s: error %v, want ErrInvalidEvent", name, err)
		}
	}
}

func testRace(t *testing.T, b Backend) {
	s, _ := open(t, b)
	closeAtEnd(t, s)
	ctx := context.Background()
	for round := 0; round < 3; round++ {
		x := uniq("race")
		mustAppend(t, s, x, eventstore.NoStream, Event(0))
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = s.Append(ctx, x, 1, Event(100+i))
			}()
		}
		close(start)
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case errors.Is(err, eventstore.ErrConflict):
				var ce *eventstore.ConflictError
				if !errors.As(err, &ce) || ce.Actual != 2 {
					t.Fatalf("conflict %v: want actual version 2", err)
				}
			default:
				t.Fatalf("racing append: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d writers won the race on one expected version, want exactly 1", wins)
		}
		recs, err := s.ReadStream(ctx, x, 1)
		if err != nil || len(recs) != 2 {
			t.Fatalf("stream holds %d records (%v), want 2", len(recs), err)
		}
	}
}

func testReadAll(t *testing.T, b Backend) {
	s, _ := open(t, b)
	closeAtEnd(t, s)
	ctx := context.Background()
	base := head(t, s)
	streams := []string{uniq("p"), uniq("q"), uniq("r")}
	var want []string // event ids in append order
	for i := 0; i < 25; i++ {
		ev := Event(i)
		want = append(want, ev.ID)
		mustAppend(t, s, streams[i%3], eventstore.Any, ev)
	}
	all, err := s.ReadAll(ctx, base+1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(want) {
		t.Fatalf("ReadAll: %d records, want %d", len(all), len(want))
	}
	for i, r := range all {
		if r.Position != base+uint64(i)+1 {
			t.Fatalf("record %d has position %d, want %d (positions must be gap-free)", i, r.Position, base+uint64(i)+1)
		}
		if r.ID != want[i] {
			t.Fatalf("record %d is not in append order", i)
		}
		if r.Stream != streams[i%3] || r.Version != uint64(i/3+1) {
			t.Fatalf("record %d: stream %q version %d", i, r.Stream, r.Version)
		}
	}
	// Paging with a small limit gives the same sequence.
	var paged []eventstore.Record
	for from := base + 1; ; {
		page, err := s.ReadAll(ctx, from, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 7 {
			t.Fatalf("ReadAll returned %d records with limit 7", len(page))
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		from = page[len(page)-1].Position + 1
	}
	if len(paged) != len(all) {
		t.Fatalf("paging gave %d records, want %d", len(paged), len(all))
	}
	for i := range paged {
		if paged[i].Position != all[i].Position || paged[i].ID != all[i].ID {
			t.Fatalf("paged record %d differs", i)
		}
	}
	mid, err := s.ReadAll(ctx, base+10, 5)
	if err != nil || len(mid) != 5 || mid[0].Position != base+10 || mid[4].Position != base+14 {
		t.Fatalf("ReadAll(from %d, 5): %d records, %v", base+10, len(mid), err)
	}
	end, err := s.ReadAll(ctx, base+26, 5)
	if err != nil || len(end) != 0 {
		t.Fatalf("ReadAll past the end: %d records, %v", len(end), err)
	}
	if _, err := s.ReadAll(ctx, 1, 0); err == nil {
		t.Fatal("ReadAll with limit 0: no error")
	}
	if base == 0 {
		zero, err := s.ReadAll(ctx, 0, 1)
		if err != nil || len(zero) != 1 || zero[0].Position != 1 {
			t.Fatalf("ReadAll from 0 must start at position 1: %d records, %v", len(zero), err)
		}
	}
}

// collector gathers subscription records for a test.
type collector struct {
	mu   sync.Mutex
	recs []eventstore.Record
	more chan struct{}
}

func newCollector() *collector { return &collector{more: make(chan struct{}, 1)} }

func (c *collector) fn(r eventstore.Record) error {
	c.mu.Lock()
	c.recs = append(c.recs, r)
	c.mu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
	return nil
}

func (c *collector) waitFor(t *testing.T, n int, timeout time.Duration) []eventstore.Record {
	t.Helper()
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		got := len(c.recs)
		c.mu.Unlock()
		if got >= n {
			c.mu.Lock()
			defer c.mu.Unlock()
			return append([]eventstore.Record(nil), c.recs...)
		}
		select {
		case <-c.more:
		case <-deadline:
			t.Fatalf("subscription delivered %d records in %v, want %d", got, timeout, n)
		}
	}
}

func testSubscribe(t *testing.T, b Backend) {
	s, _ := open(t, b)
	closeAtEnd(t, s)
	base := head(t, s)
	x := uniq("sub")
	const before, during = 60, 300
	mustAppend(t, s, x, eventstore.NoStream, events(before, 0)...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newCollector()
	done := make(chan error, 1)
	// The writer starts with the subscriber, so appends land during the
	// catch-up, during the switch to live and while live.
	writerDone := make(chan error, 1)
	go func() {
		for i := 0; i < during; i++ {
			if _, err := s.Append(context.Background(), x, eventstore.Any, Event(before+i)); err != nil {
				writerDone <- err
				return
			}
		}
		writerDone <- nil
	}()
	go func() { done <- s.Subscribe(ctx, base+1, c.fn) }()
	c.waitFor(t, before+during, b.Timeout)
	if err := <-writerDone; err != nil {
		t.Fatalf("writer: %v", err)
	}
	// One more after everything settled: still live.
	mustAppend(t, s, x, eventstore.Any, Event(9999))
	got := c.waitFor(t, before+during+1, b.Timeout)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Subscribe after cancel returned %v, want context.Canceled", err)
		}
	case <-time.After(b.Timeout):
		t.Fatal("Subscribe did not return after its context was cancelled")
	}
	var ours []eventstore.Record
	for _, r := range got {
		if r.Stream == x {
			ours = append(ours, r)
		}
	}
	if len(ours) != before+during+1 {
		t.Fatalf("subscription delivered %d records of the stream, want %d (duplicates or gaps)", len(ours), before+during+1)
	}
	for i, r := range got {
		if i > 0 && r.Position != got[i-1].Position+1 {
			t.Fatalf("subscription: position %d after %d (gap or duplicate)", r.Position, got[i-1].Position)
		}
	}
	if got[0].Position != base+1 {
		t.Fatalf("subscription started at %d, want %d", got[0].Position, base+1)
	}
	for i, r := range ours {
		if r.Version != uint64(i+1) {
			t.Fatalf("record %d of the stream has version %d", i, r.Version)
		}
	}
}

func testSubscribeFrom(t *testing.T, b Backend) {
	s, _ := open(t, b)
	closeAtEnd(t, s)
	base := head(t, s)
	x := uniq("from")
	mustAppend(t, s, x, eventstore.NoStream, events(20, 0)...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newCollector()
	done := make(chan error, 1)
	go func() { done <- s.Subscribe(ctx, base+15, c.fn) }()
	c.waitFor(t, 6, b.Timeout)
	mustAppend(t, s, x, 20, Event(20))
	got := c.waitFor(t, 7, b.Timeout)
	cancel()
	<-done
	for i, r := range got {
		if r.Position != base+15+uint64(i) || r.Version != uint64(15+i) {
			t.Fatalf("record %d: position %d version %d, want %d and %d", i, r.Position, r.Version, base+15+uint64(i), 15+i)
		}
	}
}

var errStop = errors.New("storetest: stop")

func testSubscribeHandlerError(t *testing.T, b Backend) {
	s, _ := open(t, b)
	closeAtEnd(t, s)
	base := head(t, s)
	mustAppend(t, s, uniq("h"), eventstore.NoStream, events(5, 0)...)
	n := 0
	ctx, cancel := context.WithTimeout(context.Background(), b.Timeout)
	defer cancel()
	err := s.Subscribe(ctx, base+1, func(eventstore.Record) error {
		n++
		if n == 3 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("Subscribe returned %v, want the handler's error wrapped", err)
	}
	if n != 3 {
		t.Fatalf("handler called %d times after returning an error", n)
	}
}

func testCancel(t *testing.T, b Backend) {
	s, _ := open(t, b)
	closeAtEnd(t, s)
	x := uniq("cancel")
	mustAppend(t, s, x, eventstore.NoStream, Event(0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Append(ctx, x, eventstore.Any, Event(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context: %v", err)
	}
	if _, err := s.ReadStream(ctx, x, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadStream with a cancelled context: %v", err)
	}
	if _, err := s.ReadAll(ctx, 1, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadAll with a cancelled context: %v", err)
	}
	if err := s.Subscribe(ctx, 1, func(eventstore.Record) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe with a cancelled context: %v", err)
	}
	recs, err := s.ReadStream(context.Background(), x, 1)
	if err != nil || len(recs) != 1 {
		t.Fatalf("stream holds %d records (%v) after a cancelled append, want 1", len(recs), err)
	}
	// A live subscription ends with its context.
	ctx2, cancel2 := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Subscribe(ctx2, head(t, s)+1, func(eventstore.Record) error { return nil }) }()
	time.Sleep(50 * time.Millisecond)
	cancel2()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("live Subscribe returned %v, want context.Canceled", err)
		}
	case <-time.After(b.Timeout):
		t.Fatal("live Subscribe ignored the cancellation")
	}
}

func testClose(t *testing.T, b Backend) {
	s, _ := open(t, b)
	ctx := context.Background()
	x := uniq("close")
	mustAppend(t, s, x, eventstore.NoStream, Event(0))
	done := make(chan error, 1)
	go func() { done <- s.Subscribe(ctx, head(t, s)+1, func(eventstore.Record) error { return nil }) }()
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Fatalf("live Subscribe after Close returned %v, want ErrClosed", err)
		}
	case <-time.After(b.Timeout):
		t.Fatal("live Subscribe did not end at Close")
	}
	if _, err := s.Append(ctx, x, eventstore.Any, Event(1)); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := s.ReadStream(ctx, x, 1); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("ReadStream after Close: %v", err)
	}
	if _, err := s.ReadAll(ctx, 1, 10); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("ReadAll after Close: %v", err)
	}
	if err := s.Subscribe(ctx, 1, func(eventstore.Record) error { return nil }); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
	if err := s.Close(); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
}

func testReopen(t *testing.T, b Backend) {
	s, reopen := open(t, b)
	if reopen == nil {
		_ = s.Close()
		t.Skip("backend keeps nothing across Close (in-memory)")
	}
	ctx := context.Background()
	base := head(t, s)
	x, y := uniq("keep"), uniq("keep")
	evs := events(5, 0)
	mustAppend(t, s, x, eventstore.NoStream, evs[:3]...)
	mustAppend(t, s, y, eventstore.NoStream, evs[3:]...)
	before, err := s.ReadAll(ctx, base+1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = reopen()
	closeAtEnd(t, s)
	after, err := s.ReadAll(ctx, base+1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("after reopen: %d records, want %d", len(after), len(before))
	}
	for i := range after {
		if d := sameEvent(after[i], before[i].EventData); d != "" {
			t.Fatalf("record %d after reopen: %s", i, d)
		}
		a, b := after[i], before[i]
		if a.Stream != b.Stream || a.Version != b.Version || a.Position != b.Position || a.PrevHash != b.PrevHash {
			t.Fatalf("record %d after reopen: stream/version/position/prevhash changed", i)
		}
	}
	if v := mustAppend(t, s, x, 3, Event(5)); v != 4 {
		t.Fatalf("append after reopen: version %d, want 4", v)
	}
	recs, _ := s.ReadStream(ctx, x, 4)
	if len(recs) != 1 || recs[0].Position != base+6 || recs[0].PrevHash != eventstore.HashRecord(&before[2]) {
		t.Fatalf("append after reopen: wrong position or chain")
	}
	if _, err := s.Append(ctx, y, eventstore.NoStream, Event(6)); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("NoStream on a reopened existing stream: %v", err)
	}
}

func testChain(t *testing.T, b Backend) {
	s, _ := open(t, b)
	closeAtEnd(t, s)
	ctx := context.Background()
	x, y := uniq("chain"), uniq("chain")
	mustAppend(t, s, x, eventstore.NoStream, events(3, 0)...)
	mustAppend(t, s, y, eventstore.Any, events(2, 3)...)
	mustAppend(t, s, x, eventstore.Any, events(2, 5)...)
	for _, st := range []string{x, y} {
		recs, err := s.ReadStream(ctx, st, 1)
		if err != nil {
			t.Fatal(err)
		}
		var prev [32]byte
		for i := range recs {
			if recs[i].PrevHash != prev {
				t.Fatalf("stream %q version %d: PrevHash is not the hash of the previous record", st, recs[i].Version)
			}
			prev = eventstore.HashRecord(&recs[i])
		}
	}
	var calls int
	rep, err := eventstore.Verify(ctx, s, func(uint64) { calls++ })
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Records < 7 || rep.Streams < 2 || calls == 0 {
		t.Fatalf("Verify report %+v (progress calls %d)", rep, calls)
	}
}

func testTamper(t *testing.T, b Backend) {
	if b.Tamper == nil {
		t.Skip("backend has no way to alter a stored record (immutable server log)")
	}
	s, reopen := open(t, b)
	ctx := context.Background()
	base := head(t, s)
	x, y := uniq("t"), uniq("t")
	mustAppend(t, s, x, eventstore.NoStream, events(3, 0)...)
	mustAppend(t, s, y, eventstore.NoStream, events(2, 3)...)
	mustAppend(t, s, x, eventstore.Any, Event(5))
	// base+5 is y version 2, the last of its stream: only the recorded head
	// covers it. base+2 is x version 2, which its successor commits to; it
	// is tampered second and, being lower, is then the one named.
	for _, pos := range []uint64{base + 5, base + 2} {
		s = b.Tamper(t, s, reopen, pos)
		_, err := eventstore.Verify(ctx, s, nil)
		var ce *eventstore.ChainError
		if !errors.Is(err, eventstore.ErrChainBroken) || !errors.As(err, &ce) {
			t.Fatalf("Verify of a log tampered at %d: %v, want a *ChainError", pos, err)
		}
		want := y
		if pos == base+2 {
			want = x
		}
		if ce.Position != pos || ce.Stream != want || ce.Version != 2 {
			t.Fatalf("Verify named %q version %d position %d (%v), want the tampered %q version 2 position %d",
				ce.Stream, ce.Version, ce.Position, err, want, pos)
		}
	}
	_ = s.Close()
}

func testKeyring(t *testing.T, b Backend) {
	s, reopen := open(t, b)
	ks, ok := s.(eventstore.KeyringStorage)
	if !ok {
		_ = s.Close()
		t.Fatal("backend does not implement eventstore.KeyringStorage")
	}
	ctx := context.Background()
	if _, err := ks.LoadKeyring(ctx); !errors.Is(err, eventstore.ErrNoKeyring) {
		// A shared server may already hold one; only fresh stores must be empty.
		if head(t, s) == 0 {
			t.Fatalf("LoadKeyring on a fresh store: %v, want ErrNoKeyring", err)
		}
	}
	for _, v := range [][]byte{[]byte("keyring-1"), []byte("keyring-2, longer")} {
		if err := ks.SaveKeyring(ctx, v); err != nil {
			t.Fatalf("SaveKeyring: %v", err)
		}
		got, err := ks.LoadKeyring(ctx)
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("LoadKeyring: %q, %v; want %q", got, err, v)
		}
	}
	if reopen != nil {
		_ = s.Close()
		s = reopen()
		got, err := s.(eventstore.KeyringStorage).LoadKeyring(ctx)
		if err != nil || string(got) != "keyring-2, longer" {
			t.Fatalf("LoadKeyring after reopen: %q, %v", got, err)
		}
	}
	_ = s.Close()
	if _, err := ks.LoadKeyring(ctx); reopen == nil && !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("LoadKeyring after Close: %v, want ErrClosed", err)
	}
}
