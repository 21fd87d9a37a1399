package jetstream

import (
	"context"
	"errors"
	"fmt"

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
	cfg := jsapi.OrderedConsumerConfig{DeliverPolicy: jsapi.DeliverAllPolicy}
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
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	next := max(start, 1)
	for {
		m, err := it.Next(jsapi.NextContext(ctx))
		if err != nil {
			return err
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
func (s *Store) boundedRead(ctx context.Context, op string, read func(ctx context.Context) error) error {
	rctx, cancel := s.withDone(ctx)
	defer cancel()
	rctx, cancelT := context.WithTimeout(rctx, s.opts.RetryFor+s.opts.RequestTimeout)
	defer cancelT()
	if err := read(rctx); err != nil {
		return s.mapErr(ctx, op, err)
	}
	return nil
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

// Subscribe implements eventstore.Store through an ordered consumer from
// sequence from: the server delivers the stored messages, then new ones,
// in sequence order; the consumer is recreated from the last delivered
// sequence after a missed heartbeat or a reconnection, and scan drops what
// it delivers twice and fails on a gap.
func (s *Store) Subscribe(ctx context.Context, from uint64, fn func(eventstore.Record) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	sctx, cancel := s.withDone(ctx)
	defer cancel()
	var fnErr error
	err := s.scan(sctx, max(from, 1), "", func(seq uint64, m jsapi.Msg) (bool, error) {
		r, err := decodeRecord(s.opts.SubjectPrefix, m.Subject(), seq, m.Data())
		if err != nil {
			return false, err
		}
		if err := fn(r); err != nil {
			fnErr = fmt.Errorf("eventstore: subscriber: %w", err)
			return false, fnErr
		}
		return true, nil
	})
	switch {
	case fnErr != nil:
		return fnErr
	case s.closed.Load():
		return eventstore.ErrClosed
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, errMapping):
		return err
	}
	return fmt.Errorf("jetstream: subscription dropped: %w", err)
}
