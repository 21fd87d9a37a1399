package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	jsapi "github.com/nats-io/nats.go/jetstream"

	"github.com/e4c2/e4c2/eventstore"
)

// withDone returns a context also cancelled when the store closes.
func (s *Store) withDone(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// scan delivers the messages of the log from stream sequence start
// (restricted to one subject when filter is set) to fn, through an
// ordered consumer, until fn returns false or an error. Without a filter
// it checks that sequences follow each other: a repeated sequence (after
// the consumer was recreated) is skipped, a missing one is an error.
func (s *Store) scan(ctx context.Context, start uint64, filter string, fn func(seq uint64, m jsapi.Msg) (bool, error)) error {
	// An ordered consumer is ephemeral, but the server keeps it for its
	// inactivity threshold (5 minutes by default) after the client stops
	// reading, and a stream holds at most 1,000 consumers by default:
	// reads at a few hundred a second (a delivery records each command
	// after reading its stream) would exhaust the limit. scan deletes its
	// consumer when it returns; the short threshold covers a client that
	// died before it could.
	//
	// MaxResetAttempts is 1: when the library recreates a consumer (after
	// missed heartbeats or a reconnection) it makes one attempt, and Next
	// returns the error if it fails. Its default retries forever inside
	// Next, holding the consumer's lock, so neither the caller's context
	// nor Stop can end it (Stop waits for that lock). After a NATS node's
	// kill -9 such a retry was seen to go on for over a minute, until the
	// test ended: the read models it fed stopped, every write then waited
	// for them, and the lease holder delivered nothing more. scan's callers
	// make a new consumer instead: Subscribe from its next sequence,
	// boundedRead by running the read again.
	cfg := jsapi.OrderedConsumerConfig{DeliverPolicy: jsapi.DeliverAllPolicy, InactiveThreshold: consumerIdle, MaxResetAttempts: 1}
	if start > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jsapi.DeliverByStartSequencePolicy, start
	}
	if filter != "" {
		cfg.FilterSubjects = []string{filter}
	}
	var cons jsapi.Consumer
	err := s.retry(ctx, func(actx context.Context) error {
		var err error
		cons, err = s.log.OrderedConsumer(actx, cfg)
		return err
	})
	if err != nil {
		return err
	}
	defer s.deleteConsumer(cons)
	it, err := cons.Messages(jsapi.PullHeartbeat(pullHeartbeat))
	if err != nil {
		return err
	}
	defer it.Stop()
	next := max(start, 1)
	for {
		m, err := it.Next(jsapi.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			return fmt.Errorf("%w: %w", errDropped, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		seq := md.Sequence.Stream
		if filter == "" {
			if seq < next {
				continue
			}
			if seq > next {
				return fmt.Errorf("%w: sequence %d after %d: gap in the log", errMapping, seq, next-1)
			}
			next++
		}
		if more, err := fn(seq, m); err != nil || !more {
			return err
		}
	}
}

// pullHeartbeat is how often the server tells an ordered consumer's pull
// request it is alive while it has nothing to send; two missed ones make
// the library recreate the consumer. The library's default for ordered
// consumers is 5 s. A pull request that the server never registered then
// left a read silent for 10 s: in the three-instance test a new consumer
// reported 1,817 messages pending and no pull request waiting, and in
// about half of its runs a rotation waited 10 s on the read of its topic's
// stream; with 1 s it waits 2 s. 500 ms (the library's least) was tried
// for the reads of a stream: rotations then waited 1 s, but a NATS node's
// kill -9 cost 7 to 10 s in 4 of 23 runs, against at most 5.2 s in 38
// runs with 1 s (likely more consumers recreated, for nothing, while the
// cluster elected leaders, each recreation waiting up to the library's
// fixed 10 s).
const pullHeartbeat = time.Second

// consumerIdle is the inactivity threshold of the ordered consumers: the
// server deletes one that nobody read for that long.
const consumerIdle = 10 * time.Second

// deleteConsumer deletes the server side of an ordered consumer that is no
// longer read (best effort: the inactivity threshold is the backstop).
func (s *Store) deleteConsumer(cons jsapi.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.RequestTimeout)
	defer cancel()
	_ = s.log.DeleteConsumer(ctx, info.Name)
}

// lastSeq returns the sequence of the log's last message, from the
// stream leader.
func (s *Store) lastSeq(ctx context.Context) (uint64, error) {
	var last uint64
	err := s.retry(ctx, func(actx context.Context) error {
		info, err := s.log.Info(actx)
		if err != nil {
			return err
		}
		last = info.State.LastSeq
		return nil
	})
	return last, err
}

// boundedRead runs a read that must end (ReadAll, ReadStream) within
// RetryFor, so that an unreachable cluster makes it fail instead of hang.
// A read whose consumer failed (errDropped: the library could not recreate
// it) is run again from its start, with a new consumer, within the same
// bound; read must start afresh on each call.
func (s *Store) boundedRead(ctx context.Context, op string, read func(ctx context.Context) error) error {
	rctx, cancel := s.withDone(ctx)
	defer cancel()
	rctx, cancelT := context.WithTimeout(rctx, s.opts.RetryFor+s.opts.RequestTimeout)
	defer cancelT()
	for attempt := 0; ; attempt++ {
		if attempt > 0 && s.pause(rctx, attempt) != nil {
			return s.mapErr(ctx, op, rctx.Err())
		}
		err := read(rctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errDropped) || rctx.Err() != nil {
			return s.mapErr(ctx, op, err)
		}
	}
}

// ReadAll implements eventstore.Store: the messages of the log from
// sequence from, read up to the last sequence the leader reports.
func (s *Store) ReadAll(ctx context.Context, from uint64, limit int) ([]eventstore.Record, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("jetstream: read all: limit %d must be positive", limit)
	}
	from = max(from, 1)
	var out []eventstore.Record
	err := s.boundedRead(ctx, "read all", func(ctx context.Context) error {
		out = nil
		last, err := s.lastSeq(ctx)
		if err != nil || from > last {
			return err
		}
		n := min(uint64(limit), last-from+1)
		out = make([]eventstore.Record, 0, n)
		return s.scan(ctx, from, "", func(seq uint64, m jsapi.Msg) (bool, error) {
			r, err := decodeRecord(s.opts.SubjectPrefix, m.Subject(), seq, m.Data())
			if err != nil {
				return false, err
			}
			out = append(out, r)
			return uint64(len(out)) < n, nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReadStream implements eventstore.Store: the stream's last message tells
// its version, then an ordered consumer filtered on the stream's subject
// reads its events up to that version.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64) ([]eventstore.Record, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	from = max(from, 1)
	subj := s.subject(stream)
	var out []eventstore.Record
	err := s.boundedRead(ctx, "read stream", func(ctx context.Context) error {
		out = nil
		var h head
		err := s.retry(ctx, func(actx context.Context) error {
			var err error
			h, err = s.readHead(actx, subj)
			return err
		})
		if err != nil || h.version < from {
			return err
		}
		if h.version == from {
			out = []eventstore.Record{h.rec}
			return nil
		}
		want := h.version - from + 1
		out = make([]eventstore.Record, 0, want)
		return s.scan(ctx, 1, subj, func(seq uint64, m jsapi.Msg) (bool, error) {
			r, err := decodeRecord(s.opts.SubjectPrefix, m.Subject(), seq, m.Data())
			if err != nil {
				return false, err
			}
			if r.Version < from {
				return true, nil
			}
			if r.Version != from+uint64(len(out)) {
				return false, fmt.Errorf("%w: stream %q: version %d at sequence %d, want %d",
					errMapping, stream, r.Version, seq, from+uint64(len(out)))
			}
			out = append(out, r)
			return uint64(len(out)) < want, nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ErrStalled ends a subscription whose consumer delivered nothing for
// Options.StallAfter, maxStalls times in a row, while the log held
// messages past its position (or while the server could not tell): the
// caller subscribes again from its position, and reports the stall
// meanwhile.
var ErrStalled = errors.New("jetstream: subscription stalled")

// errDropped marks a consumer that failed after it was made (the library
// could not recreate it after a lost connection or missed heartbeats):
// Subscribe makes a new one from its next sequence, as after a stall.
var errDropped = errors.New("jetstream: consumer failed")

// maxStalls is how many consumers in a row a subscription recreates after
// a stall or a failure, without a record in between, before it gives up
// with the last error (so that a cluster that stays silent shows in
// /readyz).
const maxStalls = 3

// Subscribe implements eventstore.Store through an ordered consumer from
// sequence from: the server delivers the stored messages, then new ones,
// in sequence order; the client library recreates the consumer from the
// last delivered sequence after a missed heartbeat or a reconnection, and
// scan drops what it delivers twice and fails on a gap.
//
// The library's recovery is not enough: after a node of the cluster died,
// an ordered consumer was seen to deliver nothing more, without an error,
// while the log grew (the instance then never delivered the commands it
// was meant to), and its own recovery fails now and then (see scan). A
// watchdog stops a consumer that delivered nothing for StallAfter while
// the log is ahead of it, and Subscribe recreates it from the next
// sequence (no gap, no repeat); so it does when the library's own
// recovery fails (see scan). After maxStalls stalls or failures in a row
// it returns the last error, ErrStalled after a stall.
func (s *Store) Subscribe(ctx context.Context, from uint64, fn func(eventstore.Record) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	sctx, cancel := s.withDone(ctx)
	defer cancel()
	// ended: why the subscription must end, once the store closed or ctx
	// is done (nil otherwise).
	ended := func() error {
		if s.closed.Load() {
			return eventstore.ErrClosed
		}
		return ctx.Err()
	}
	w := &stallWatch{}
	w.next.Store(max(from, 1))
	for stalls := 0; ; {
		delivered := w.delivered.Load()
		err := s.watchedScan(sctx, w, fn)
		if e := ended(); e != nil {
			return e
		}
		if !errors.Is(err, ErrStalled) && !errors.Is(err, errDropped) {
			return err
		}
		s.stalls.Add(1)
		if w.delivered.Load() != delivered {
			stalls = 0
		}
		if stalls++; stalls >= maxStalls {
			return err
		}
		if s.opts.Logger != nil {
			s.opts.Logger.Warn("log subscription stalled or failed; recreating its consumer", "position", w.next.Load(), "error", err)
		}
		if s.pause(sctx, stalls) != nil {
			return ended()
		}
	}
}

// watchedScan runs one consumer of Subscribe from w.next under the stall
// watchdog.
func (s *Store) watchedScan(ctx context.Context, w *stallWatch, fn func(eventstore.Record) error) error {
	wctx, stop := context.WithCancelCause(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		s.watchStall(wctx, w, stop)
	}()
	defer func() { <-watched }()
	defer stop(nil)
	var fnErr error
	err := s.scan(wctx, w.next.Load(), "", func(seq uint64, m jsapi.Msg) (bool, error) {
		r, err := decodeRecord(s.opts.SubjectPrefix, m.Subject(), seq, m.Data())
		if err != nil {
			return false, err
		}
		w.busy.Store(true)
		err = fn(r)
		w.next.Store(seq + 1)
		w.delivered.Add(1)
		w.busy.Store(false)
		if err != nil {
			fnErr = fmt.Errorf("eventstore: subscriber: %w", err)
			return false, fnErr
		}
		return true, nil
	})
	switch cause := context.Cause(wctx); {
	case fnErr != nil:
		return fnErr
	case errors.Is(cause, ErrStalled):
		return cause
	case errors.Is(err, errMapping):
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, errDropped):
		return err
	}
	return fmt.Errorf("jetstream: subscription dropped: %w", err)
}

// stallWatch is what the stall watchdog sees of a subscription.
type stallWatch struct {
	next      atomic.Uint64 // the sequence the subscriber waits for
	delivered atomic.Uint64 // records handed to the subscriber
	busy      atomic.Bool   // the subscriber's function is running
}

// watchStall checks the subscription every StallAfter/4 until ctx is
// done, and stops it with ErrStalled once it delivered nothing for
// StallAfter while the log held messages past its position, or while the
// stream leader did not answer (a connection that hangs without closing
// stalls the consumer too). A subscriber busy with one record is not
// stalled, and neither is an idle log.
func (s *Store) watchStall(ctx context.Context, w *stallWatch, stop context.CancelCauseFunc) {
	t := time.NewTicker(max(s.opts.StallAfter/4, time.Millisecond))
	defer t.Stop()
	seen, since := w.delivered.Load(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if d := w.delivered.Load(); d != seen || w.busy.Load() {
			seen, since = d, time.Now()
			continue
		}
		if time.Since(since) < s.opts.StallAfter {
			continue
		}
		last, err := s.lastSeqOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		next := w.next.Load()
		switch {
		case err != nil:
			stop(fmt.Errorf("%w: nothing delivered for %v and the stream leader does not answer: %w", ErrStalled, s.opts.StallAfter, err))
			return
		case last >= next:
			stop(fmt.Errorf("%w: nothing delivered for %v while the log holds sequence %d and the subscriber waits for %d", ErrStalled, s.opts.StallAfter, last, next))
			return
		}
		since = time.Now() // an idle log: nothing to deliver
	}
}

// lastSeqOnce is lastSeq without retries, bounded by RequestTimeout.
func (s *Store) lastSeqOnce(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	info, err := s.log.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}
