package jetstream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	jsapi "github.com/nats-io/nats.go/jetstream"

	"github.com/e4c2/e4c2/eventstore"
)

// Headers of the JetStream publish protocol.
const (
	hdrExpectedLastSubjSeq = "Nats-Expected-Last-Subject-Sequence"
	hdrBatchID             = "Nats-Batch-Id"
	hdrBatchSeq            = "Nats-Batch-Sequence"
	hdrBatchCommit         = "Nats-Batch-Commit"
)

// MaxBatch is the largest number of events one Append may carry: the
// default atomic batch limit of nats-server (its max_batch_size limit can
// lower it).
const MaxBatch = 1000

// maxAppendAttempts bounds the attempts of one Append (conflicts with
// concurrent writers under Any, transient errors).
const maxAppendAttempts = 200

// errDuplicate: the server answered that the message id is stored already.
var errDuplicate = errors.New("jetstream: duplicate message id")

// head is the tip of one stream: the stream sequence of its last message
// (0 when it has none), its version and its last record.
type head struct {
	seq     uint64
	version uint64
	rec     eventstore.Record
}

// readHead reads the last message of a log subject from the stream leader.
func (s *Store) readHead(ctx context.Context, subj string) (head, error) {
	m, err := s.log.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jsapi.ErrMsgNotFound) {
		return head{}, nil
	}
	if err != nil {
		return head{}, err
	}
	r, err := decodeRecord(s.opts.SubjectPrefix, m.Subject, m.Sequence, m.Data)
	if err != nil {
		return head{}, err
	}
	return head{seq: m.Sequence, version: r.Version, rec: r}, nil
}

// Append implements eventstore.Store.
//
// It reads the stream's last message, checks the expected version against
// it, and publishes the events with Nats-Expected-Last-Subject-Sequence set
// to that message's sequence, so the server refuses the write if anything
// reached the stream since. Several events go in one atomic batch. Every
// message carries a Nats-Msg-Id made of a nonce drawn once per Append and
// the event's index, so a publish retried after a lost answer is either
// refused or deduplicated by the server, and the store then finds out
// whether the earlier attempt was stored (see appendOp.landed).
func (s *Store) Append(ctx context.Context, stream string, expected int64, evs ...eventstore.EventData) (uint64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if err := eventstore.ValidateAppend(stream, expected, evs); err != nil {
		return 0, err
	}
	if len(evs) > MaxBatch {
		return 0, fmt.Errorf("%w: %d events in one append, at most %d with JetStream", eventstore.ErrInvalidEvent, len(evs), MaxBatch)
	}
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return 0, fmt.Errorf("jetstream: append: nonce: %w", err)
	}
	a := &appendOp{s: s, stream: stream, subj: s.subject(stream), expected: expected, evs: evs,
		nonce: hex.EncodeToString(nonce[:])}
	v, err := a.run(ctx)
	if err != nil {
		return 0, s.mapErr(ctx, "append", err)
	}
	return v, nil
}

// appendOp is one Append and its attempts.
type appendOp struct {
	s        *Store
	stream   string
	subj     string
	expected int64
	evs      []eventstore.EventData
	nonce    string
	// tried holds the subject sequences attempts were published against
	// whose outcome is unknown: if one was stored, it is the next message
	// of the subject after that sequence.
	tried []uint64
}

func (a *appendOp) msgID(i int) string { return a.nonce + "-" + strconv.Itoa(i) }

func (a *appendOp) run(ctx context.Context) (uint64, error) {
	s := a.s
	deadline := time.Now().Add(s.opts.RetryFor)
	var lastErr error
	for attempt := 0; attempt < maxAppendAttempts; attempt++ {
		if attempt > 0 {
			if time.Now().After(deadline) {
				break
			}
			if err := s.pause(ctx, attempt); err != nil {
				return 0, err
			}
		}
		v, done, err := a.attempt(ctx, attempt)
		if done {
			return v, err
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = errors.New("no attempt left")
	}
	return 0, fmt.Errorf("append to stream %q: gave up: %w", a.stream, lastErr)
}

// attempt makes one attempt. done says whether the Append is decided
// (with the version or the error); otherwise err says why to retry.
func (a *appendOp) attempt(ctx context.Context, n int) (v uint64, done bool, err error) {
	s := a.s
	retry := func(err error) (uint64, bool, error) {
		if s.transient(ctx, err) {
			return 0, false, err
		}
		return 0, true, err
	}
	if v, ok, err := a.landed(ctx, n); err != nil {
		return retry(err)
	} else if ok {
		return v, true, nil
	}
	actx, cancel := context.WithTimeout(ctx, s.attemptTimeout(n))
	h, err := s.readHead(actx, a.subj)
	cancel()
	if err != nil {
		return retry(err)
	}
	if err := eventstore.CheckExpected(a.stream, a.expected, h.version); err != nil {
		// An earlier attempt may have been stored just before the read.
		if v, ok, lerr := a.landed(ctx, n); lerr != nil {
			return retry(lerr)
		} else if ok {
			return v, true, nil
		}
		return 0, true, err
	}
	if len(a.evs) == 0 {
		return h.version, true, nil
	}
	msgs, err := a.messages(h)
	if err != nil {
		return 0, true, err
	}
	a.remember(h.seq)
	err = s.publish(ctx, msgs, a.nonce+"-"+strconv.Itoa(n), s.attemptTimeout(n))
	if err == nil {
		a.tried = nil
		return h.version + uint64(len(a.evs)), true, nil
	}
	var apiErr *jsapi.APIError
	switch {
	case errors.Is(err, errDuplicate):
		// Stored by an earlier attempt: the next one finds it.
		return 0, false, err
	case errors.As(err, &apiErr) && (apiErr.ErrorCode == codeWrongLastSeq || apiErr.ErrorCode == codeBatchDuplicate):
		// The stream moved, maybe through an earlier attempt of ours:
		// look again.
		return 0, false, err
	}
	return retry(err)
}

func (a *appendOp) remember(seq uint64) {
	for _, t := range a.tried {
		if t == seq {
			return
		}
	}
	a.tried = append(a.tried, seq)
}

// landed reports whether an earlier attempt was stored, and then the
// stream version it reached. Only the next message of the subject after
// the sequence an attempt expected can be that attempt's first event;
// once another message holds that place, the attempt can never be stored.
func (a *appendOp) landed(ctx context.Context, n int) (uint64, bool, error) {
	s := a.s
	keep := a.tried[:0]
	defer func() { a.tried = keep }()
	for i, seq := range a.tried {
		actx, cancel := context.WithTimeout(ctx, s.attemptTimeout(n))
		m, err := s.log.GetMsg(actx, seq+1, jsapi.WithGetMsgSubject(a.subj))
		cancel()
		if errors.Is(err, jsapi.ErrMsgNotFound) {
			keep = append(keep, seq) // nothing after it yet
			continue
		}
		if err != nil {
			keep = append(keep, a.tried[i:]...)
			return 0, false, err
		}
		if m.Header.Get(nats.MsgIdHdr) != a.msgID(0) {
			continue // another append took the place
		}
		r, err := decodeRecord(s.opts.SubjectPrefix, m.Subject, m.Sequence, m.Data)
		if err != nil {
			return 0, false, err
		}
		keep = keep[:0]
		s.recovered.Add(1)
		return r.Version + uint64(len(a.evs)) - 1, true, nil
	}
	return 0, false, nil
}

// messages builds the messages of an attempt after head h.
func (a *appendOp) messages(h head) ([]*nats.Msg, error) {
	msgs := make([]*nats.Msg, len(a.evs))
	prev := [32]byte{}
	if h.version > 0 {
		prev = eventstore.HashRecord(&h.rec)
	}
	for i, ev := range a.evs {
		r := eventstore.Record{EventData: ev, Stream: a.stream, Version: h.version + uint64(i) + 1, PrevHash: prev}
		prev = eventstore.HashRecord(&r)
		data, err := encodeRecord(&r)
		if err != nil {
			return nil, err
		}
		m := nats.NewMsg(a.subj)
		m.Data = data
		m.Header.Set(nats.MsgIdHdr, a.msgID(i))
		msgs[i] = m
	}
	msgs[0].Header.Set(hdrExpectedLastSubjSeq, strconv.FormatUint(h.seq, 10))
	return msgs, nil
}

// pubAck is the server's answer to a publish into a stream.
type pubAck struct {
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     uint16 `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
	Stream    string `json:"stream"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
}

// publish stores msgs: one message by a plain publish, several as one
// atomic batch (all stored at consecutive sequences, or none).
func (s *Store) publish(ctx context.Context, msgs []*nats.Msg, batchID string, timeout time.Duration) error {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := msgs[len(msgs)-1]
	if len(msgs) > 1 {
		for i, m := range msgs {
			m.Header.Set(hdrBatchID, batchID)
			m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		}
		last.Header.Set(hdrBatchCommit, "1")
		// The staged messages need no answer: a missing one makes the
		// commit fail (incomplete batch), and the whole batch is retried.
		for _, m := range msgs[:len(msgs)-1] {
			if err := s.nc.PublishMsg(m); err != nil {
				return err
			}
		}
	}
	resp, err := s.nc.RequestMsgWithContext(actx, last)
	if err != nil {
		return err
	}
	var ack pubAck
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return fmt.Errorf("publish answer: %w", err)
	}
	if ack.Error != nil {
		return &jsapi.APIError{Code: ack.Error.Code, ErrorCode: jsapi.ErrorCode(ack.Error.ErrCode), Description: ack.Error.Description}
	}
	if ack.Duplicate {
		return errDuplicate
	}
	if ack.Seq == 0 || ack.Stream != s.opts.Stream {
		return fmt.Errorf("publish answer: stream %q sequence %d", ack.Stream, ack.Seq)
	}
	return nil
}
