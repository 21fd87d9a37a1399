package esdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/e4c2/e4c2/eventstore"
)

// Options configure Open.
type Options struct {
	// LogStream is the esdb stream holding the log (default "e4c2-log").
	// Several C2 logs can share a server under different names.
	LogStream string
	// KeyringStream holds the sealing keyring (default "$e4c2-keyring" for
	// the default log, "$<log>-keyring" otherwise).
	KeyringStream string
}

// DefaultLogStream is the default log stream name.
const DefaultLogStream = "e4c2-log"

// readPage is the count of one esdb read.
const readPage = 4096

// maxAppendAttempts bounds the retries of an append that lost the race on
// the log stream to another process.
const maxAppendAttempts = 100

// Store is the esdb-backed event log.
type Store struct {
	srv     server
	log     string
	keyring string
	closed  atomic.Bool
	done    chan struct{}

	mu  sync.Mutex // serialises appends and index catch-up
	idx index

	drops atomic.Uint64 // dropped subscriptions (Drops)
}

var (
	_ eventstore.Store          = (*Store)(nil)
	_ eventstore.KeyringStorage = (*Store)(nil)
)

// index is the client-side view of the log: how many events it holds and,
// per stream, the positions of its events and the hash of its last one.
type index struct {
	n       uint64
	streams map[string]*streamIndex
}

type streamIndex struct {
	positions []uint64 // positions[v-1] is the position of version v
	hash      [32]byte
}

func (ix *index) add(r *eventstore.Record) error {
	si := ix.streams[r.Stream]
	if si == nil {
		si = &streamIndex{}
		ix.streams[r.Stream] = si
	}
	if r.Position != ix.n+1 || r.Version != uint64(len(si.positions))+1 {
		return fmt.Errorf("%w: position %d stream %q version %d out of sequence", errMapping, r.Position, r.Stream, r.Version)
	}
	si.positions = append(si.positions, r.Position)
	si.hash = eventstore.HashRecord(r)
	ix.n++
	return nil
}

// Open connects to the server at url (an esdb connection string, e.g.
// "esdb://localhost:2113?tls=false") and reads the log once to build the
// stream index.
func Open(ctx context.Context, url string, opts *Options) (*Store, error) {
	cfg, err := esdb.ParseConnectionString(url)
	if err != nil {
		return nil, fmt.Errorf("esdb: connection string: %w", err)
	}
	client, err := esdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("esdb: connect: %w", err)
	}
	return newStore(ctx, clientServer{client}, opts)
}

func newStore(ctx context.Context, srv server, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.LogStream == "" {
		o.LogStream = DefaultLogStream
	}
	if strings.HasPrefix(o.LogStream, "$") {
		_ = srv.close()
		return nil, fmt.Errorf("esdb: log stream %q: system stream names are reserved", o.LogStream)
	}
	if o.KeyringStream == "" {
		o.KeyringStream = "$" + strings.TrimSuffix(o.LogStream, "-log") + "-keyring"
	}
	s := &Store{srv: srv, log: o.LogStream, keyring: o.KeyringStream, done: make(chan struct{}),
		idx: index{streams: make(map[string]*streamIndex)}}
	s.mu.Lock()
	err := s.catchUp(ctx)
	s.mu.Unlock()
	if err != nil {
		_ = srv.close()
		return nil, err
	}
	return s, nil
}

// mapErr turns client errors into ours: a cancelled context stays
// recognisable, a closed client becomes ErrClosed.
func (s *Store) mapErr(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if s.closed.Load() || errors.Is(err, errConnClosed) {
		return eventstore.ErrClosed
	}
	return fmt.Errorf("esdb: %s: %w", op, err)
}

func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	return nil
}

// readLog reads up to count events of the log from position from and
// calls fn for each. A missing log stream is an empty log.
func (s *Store) readLog(ctx context.Context, from uint64, count uint64, fn func(*eventstore.Record) error) (int, error) {
	evs, err := s.srv.readEvents(ctx, s.log, logFrom(from), false, count)
	if err != nil {
		return 0, s.mapErr(ctx, "read log", err)
	}
	for i, e := range evs {
		r, err := fromESDB(e)
		if err != nil {
			return i, err
		}
		if err := fn(&r); err != nil {
			return i, err
		}
	}
	return len(evs), nil
}

// catchUp reads the events appended to the log since the index was last
// brought up to date (by this or another process). Callers hold s.mu.
func (s *Store) catchUp(ctx context.Context) error {
	for {
		n, err := s.readLog(ctx, s.idx.n+1, readPage, s.idx.add)
		if err != nil {
			return err
		}
		if n < readPage {
			return nil
		}
	}
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected int64, evs ...eventstore.EventData) (uint64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if err := eventstore.ValidateAppend(stream, expected, evs); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 1; ; attempt++ {
		if err := s.catchUp(ctx); err != nil {
			return 0, err
		}
		var version uint64
		var prev [32]byte
		if si := s.idx.streams[stream]; si != nil {
			version, prev = uint64(len(si.positions)), si.hash
		}
		if err := eventstore.CheckExpected(stream, expected, version); err != nil {
			return 0, err
		}
		if len(evs) == 0 {
			return version, nil
		}
		recs := make([]eventstore.Record, len(evs))
		data := make([]esdb.EventData, len(evs))
		for i, ev := range evs {
			recs[i] = eventstore.Record{EventData: ev, Stream: stream, Version: version + uint64(i) + 1,
				Position: s.idx.n + uint64(i) + 1, PrevHash: prev}
			prev = eventstore.HashRecord(&recs[i])
			var err error
			if data[i], err = toESDB(&recs[i]); err != nil {
				return 0, err
			}
		}
		err := s.appendLog(ctx, logExpected(s.idx.n), data)
		if err == nil {
			for i := range recs {
				if err := s.idx.add(&recs[i]); err != nil {
					return 0, err
				}
			}
			return recs[len(recs)-1].Version, nil
		}
		if errors.Is(err, errWrongExpected) && attempt < maxAppendAttempts {
			// Another writer extended the log: catch up and decide again.
			continue
		}
		return 0, s.mapErr(ctx, "append", err)
	}
}

// appendRetryFor bounds how long one log append is retried while it is
// refused by a follower or times out (a leader election takes seconds).
var appendRetryFor = 10 * time.Second

// appendLog appends data to the log stream, retrying the very same call
// (same events, same expected revision) while it fails transiently: a
// follower refused it (the client moves to the leader) or it timed out. A
// timed-out append may have been written; esdb's idempotent writes (the
// same event ids after the same expected revision succeed again without a
// second copy) make the retry safe.
func (s *Store) appendLog(ctx context.Context, expected esdb.ExpectedRevision, data []esdb.EventData) error {
	_, err := s.srv.appendEvents(ctx, s.log, expected, data)
	deadline := time.Now().Add(appendRetryFor)
	for retry := 1; err != nil && transientErr(err) && time.Now().Before(deadline); retry++ {
		if perr := s.pause(ctx, retry); perr != nil {
			return perr
		}
		_, err = s.srv.appendEvents(ctx, s.log, expected, data)
	}
	return err
}

// pause waits before retry number n: a short, growing backoff (at most
// one second), cut short by ctx or Close.
func (s *Store) pause(ctx context.Context, n int) error {
	t := time.NewTimer(time.Duration(min(n, 20)) * 50 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return eventstore.ErrClosed
	case <-t.C:
		return nil
	}
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64) ([]eventstore.Record, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if from == 0 {
		from = 1
	}
	s.mu.Lock()
	if err := s.catchUp(ctx); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	var positions []uint64
	if si := s.idx.streams[stream]; si != nil && from <= uint64(len(si.positions)) {
		positions = append(positions, si.positions[from-1:]...)
	}
	s.mu.Unlock()
	out := make([]eventstore.Record, 0, len(positions))
	for i := 0; i < len(positions); {
		// Read each run of consecutive positions in one call.
		j := i + 1
		for j < len(positions) && positions[j] == positions[j-1]+1 {
			j++
		}
		_, err := s.readLog(ctx, positions[i], uint64(j-i), func(r *eventstore.Record) error {
			if r.Stream != stream {
				return fmt.Errorf("%w: position %d is not of stream %q", errMapping, r.Position, stream)
			}
			out = append(out, *r)
			return nil
		})
		if err != nil {
			return nil, err
		}
		i = j
	}
	if len(out) != len(positions) {
		return nil, fmt.Errorf("%w: stream %q: read %d of %d events", errMapping, stream, len(out), len(positions))
	}
	return out, nil
}

// ReadAll implements eventstore.Store: a forward read of the log stream.
func (s *Store) ReadAll(ctx context.Context, from uint64, limit int) ([]eventstore.Record, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("esdb: read all: limit %d must be positive", limit)
	}
	if from == 0 {
		from = 1
	}
	out := make([]eventstore.Record, 0, min(limit, readPage))
	_, err := s.readLog(ctx, from, uint64(limit), func(r *eventstore.Record) error {
		out = append(out, *r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// resubscribeFor bounds how long Subscribe keeps resubscribing after a
// dropped subscription without getting an event or a subscription through.
var resubscribeFor = 30 * time.Second

// Subscribe implements eventstore.Store through SubscribeToAll, filtered on
// the server to the log stream. A dropped subscription (connection lost,
// leader change, server restart) is resubscribed from the next position to
// deliver, after a growing pause; the handler sees no gap and no duplicate.
// Subscribe gives up, returning the drop, once resubscribing failed for
// resubscribeFor in a row.
func (s *Store) Subscribe(ctx context.Context, from uint64, fn func(eventstore.Record) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if from == 0 {
		from = 1
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-sctx.Done():
		}
	}()
	next := from
	var failing time.Time // when the current run of drops began
	for drops := 0; ; {
		delivered, err := s.follow(sctx, &next, fn)
		var ferr *followError
		switch {
		case s.closed.Load():
			return eventstore.ErrClosed
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &ferr):
			return ferr.err // the handler's error, a gap or a foreign event
		}
		if delivered || drops == 0 {
			failing, drops = time.Now(), 0
		}
		drops++
		s.drops.Add(1)
		if time.Since(failing) > resubscribeFor {
			return fmt.Errorf("esdb: subscription dropped: %w", err)
		}
		if err := s.pause(sctx, drops); err != nil {
			return s.subErr(ctx, err)
		}
	}
}

// followError carries an error that must end Subscribe rather than cause
// a resubscription.
type followError struct{ err error }

func (e *followError) Error() string { return e.err.Error() }

// follow runs one subscription from *next and advances *next past every
// event handed to fn. It returns when the subscription drops (a plain
// error), or with a *followError.
func (s *Store) follow(ctx context.Context, next *uint64, fn func(eventstore.Record) error) (delivered bool, err error) {
	// Start after the $all position of the event just before next; when
	// there is none (next is 1, or beyond the end), start at the beginning
	// and skip what comes before next.
	var start esdb.AllPosition = esdb.Start{}
	if *next > 1 {
		prev, err := s.srv.readEvents(ctx, s.log, esdb.Revision(*next-2), false, 1)
		if err != nil {
			return false, err
		}
		if len(prev) == 1 && prev[0].EventNumber == *next-2 {
			start = prev[0].Position
		}
	}
	sub, err := s.srv.subscribeAll(ctx, start, s.log)
	if err != nil {
		return false, err
	}
	defer sub.close()
	for {
		e, err := sub.recv()
		if err != nil {
			return delivered, err
		}
		if e.StreamID != s.log || strings.HasPrefix(e.EventType, "$") {
			continue
		}
		switch pos := e.EventNumber + 1; {
		case pos < *next:
			continue // before from, or delivered already
		case pos > *next:
			return delivered, &followError{fmt.Errorf("esdb: subscription: position %d after %d: gap", pos, *next-1)}
		}
		r, err := fromESDB(e)
		if err != nil {
			return delivered, &followError{err}
		}
		if err := fn(r); err != nil {
			return delivered, &followError{fmt.Errorf("eventstore: subscriber: %w", err)}
		}
		*next++
		delivered = true
	}
}

// Drops returns how many times subscriptions of this store were dropped
// and resubscribed (or given up).
func (s *Store) Drops() uint64 { return s.drops.Load() }

func (s *Store) subErr(ctx context.Context, err error) error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return fmt.Errorf("esdb: subscription dropped: %w", err)
}

// keyringType is the event type of keyring entries.
const keyringType = "e4c2.keyring.v1"

// LoadKeyring implements eventstore.KeyringStorage: the last entry of the
// keyring stream.
func (s *Store) LoadKeyring(ctx context.Context) ([]byte, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	evs, err := s.srv.readEvents(ctx, s.keyring, esdb.End{}, true, 1)
	if err != nil {
		return nil, s.mapErr(ctx, "load keyring", err)
	}
	if len(evs) == 0 {
		return nil, eventstore.ErrNoKeyring
	}
	if evs[0].EventType != keyringType {
		return nil, fmt.Errorf("%w: keyring stream holds an event of another type", errMapping)
	}
	return append([]byte(nil), evs[0].Data...), nil
}

// SaveKeyring implements eventstore.KeyringStorage: it appends the new
// keyring, then truncates the older entries ($tb) so that old wrappings of
// the data keys are no longer readable (the server drops them for good at
// its next scavenge).
func (s *Store) SaveKeyring(ctx context.Context, keyring []byte) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return fmt.Errorf("esdb: save keyring: event id: %w", err)
	}
	rev, err := s.srv.appendEvents(ctx, s.keyring, esdb.Any{}, []esdb.EventData{
		{EventID: id, EventType: keyringType, ContentType: esdb.ContentTypeBinary, Data: bytes.Clone(keyring)}})
	if err != nil {
		return s.mapErr(ctx, "save keyring", err)
	}
	if err := s.srv.truncateBefore(ctx, s.keyring, rev); err != nil {
		return s.mapErr(ctx, "truncate keyring", err)
	}
	return nil
}

// Close implements eventstore.Store.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return eventstore.ErrClosed
	}
	close(s.done)
	if err := s.srv.close(); err != nil {
		return fmt.Errorf("esdb: close: %w", err)
	}
	return nil
}
