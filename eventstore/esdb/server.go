package esdb

import (
	"context"
	"errors"
	"io"
	"regexp"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// server is the part of an EventStoreDB the store uses. clientServer
// implements it with the official client; the tests run the whole store
// logic against an in-memory fake with the same semantics.
type server interface {
	// appendEvents appends to stream if it matches expected and returns
	// the revision of the last event written.
	appendEvents(ctx context.Context, stream string, expected esdb.ExpectedRevision, evs []esdb.EventData) (uint64, error)
	// readEvents reads at most count events; a missing stream is an empty
	// result.
	readEvents(ctx context.Context, stream string, from esdb.StreamPosition, backwards bool, count uint64) ([]*esdb.RecordedEvent, error)
	// subscribeAll follows $all from after from (or from the start),
	// delivering only events of the stream with exactly that name.
	subscribeAll(ctx context.Context, from esdb.AllPosition, stream string) (subscription, error)
	// truncateBefore drops the events of stream before revision rev.
	truncateBefore(ctx context.Context, stream string, rev uint64) error
	close() error
}

// subscription yields the events of a subscribeAll. recv returns an error
// when the subscription is dropped (context done, connection closed).
type subscription interface {
	recv() (*esdb.RecordedEvent, error)
	close()
}

var (
	// errWrongExpected: the server refused an append on its expected
	// revision.
	errWrongExpected = errors.New("esdb: wrong expected revision")
	// errConnClosed: the client connection is closed.
	errConnClosed = errors.New("esdb: connection closed")
	// errNotLeader: the node is a follower and refuses writes (the client
	// reconnects to the leader for the next call).
	errNotLeader = errors.New("esdb: not the leader")
	// errTimeout: the call's deadline passed on the server or the client;
	// an append may or may not have been written.
	errTimeout = errors.New("esdb: deadline exceeded")
)

// transientErr reports whether a call failed in a way that a retry of the
// same call may cure: a follower refused it or it timed out.
func transientErr(err error) bool {
	return errors.Is(err, errNotLeader) || errors.Is(err, errTimeout)
}

// clientServer adapts *esdb.Client to server.
type clientServer struct{ c *esdb.Client }

// esdbCode returns the esdb error code of err, or -1.
func esdbCode(err error) esdb.ErrorCode {
	var e *esdb.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return -1
}

// mapClientErr maps the client's error codes to the sentinels above,
// keeping the client error in the chain.
func mapClientErr(err error) error {
	switch esdbCode(err) {
	case esdb.ErrorCodeWrongExpectedVersion:
		return errors.Join(errWrongExpected, err)
	case esdb.ErrorCodeConnectionClosed:
		return errors.Join(errConnClosed, err)
	case esdb.ErrorCodeNotLeader:
		return errors.Join(errNotLeader, err)
	case esdb.ErrorCodeDeadlineExceeded:
		return errors.Join(errTimeout, err)
	}
	return err
}

func (c clientServer) appendEvents(ctx context.Context, stream string, expected esdb.ExpectedRevision, evs []esdb.EventData) (uint64, error) {
	res, err := c.c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: expected}, evs...)
	if err != nil {
		return 0, mapClientErr(err)
	}
	return res.NextExpectedVersion, nil
}

func (c clientServer) readEvents(ctx context.Context, stream string, from esdb.StreamPosition, backwards bool, count uint64) ([]*esdb.RecordedEvent, error) {
	dir := esdb.Forwards
	if backwards {
		dir = esdb.Backwards
	}
	rs, err := c.c.ReadStream(ctx, stream, esdb.ReadStreamOptions{From: from, Direction: dir}, count)
	if err != nil {
		if esdbCode(err) == esdb.ErrorCodeResourceNotFound {
			return nil, nil
		}
		return nil, mapClientErr(err)
	}
	defer rs.Close()
	var out []*esdb.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			if esdbCode(err) == esdb.ErrorCodeResourceNotFound {
				return nil, nil
			}
			return nil, mapClientErr(err)
		}
		if e := ev.OriginalEvent(); e != nil {
			out = append(out, e)
		}
	}
}

func (c clientServer) subscribeAll(ctx context.Context, from esdb.AllPosition, stream string) (subscription, error) {
	sub, err := c.c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{
		From: from,
		// Server-side filter on the exact stream name (which also leaves
		// out every system event).
		Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Regex: "^" + regexpQuote(stream) + "$"},
	})
	if err != nil {
		return nil, mapClientErr(err)
	}
	return clientSub{sub}, nil
}

type clientSub struct{ s *esdb.Subscription }

func (c clientSub) recv() (*esdb.RecordedEvent, error) {
	for {
		ev := c.s.Recv()
		switch {
		case ev.SubscriptionDropped != nil:
			err := ev.SubscriptionDropped.Error
			if err == nil {
				err = errors.New("esdb: subscription dropped")
			}
			return nil, mapClientErr(err)
		case ev.EventAppeared != nil:
			if e := ev.EventAppeared.OriginalEvent(); e != nil {
				return e, nil
			}
		}
		// Checkpoints, caught-up and fell-behind notices carry no event.
	}
}

func (c clientSub) close() { _ = c.s.Close() }

func (c clientServer) truncateBefore(ctx context.Context, stream string, rev uint64) error {
	var meta esdb.StreamMetadata
	meta.SetTruncateBefore(rev)
	_, err := c.c.SetStreamMetadata(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, meta)
	return mapClientErr(err)
}

func (c clientServer) close() error { return c.c.Close() }

// regexpQuote quotes stream for a server-side regular expression.
func regexpQuote(stream string) string { return regexp.QuoteMeta(stream) }
