package c2

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/eventcodec"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

// ErrNotPending: the queued command was delivered, failed or dropped (its
// client was removed) meanwhile. Retrying cannot help.
var ErrNotPending = fmt.Errorf("c2: %w", domain.ErrUnknownDelivery)

// ErrUnbuildable: a queued command can never be built (its key record is
// missing or malformed, a sealed key does not open, the suite refuses the
// key). Delivery workers fail such a command at once; other BuildCommand
// errors (store reads, cancelled contexts) are worth retrying.
var ErrUnbuildable = errors.New("c2: command cannot be built")

func unbuildable(err error) error {
	if err == nil || errors.Is(err, ErrUnbuildable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnbuildable, err)
}

// keyAt returns the key held by the event at (stream, version): from the
// read model when it is the current key, else from that record of the log
// (an older key still protecting a queued command, e.g. SetIdKey).
func (s *Service) keyAt(ctx context.Context, stream string, version uint64, current projections.KeyRef, ok bool) (projections.KeyRef, error) {
	if ok && current.Version == version {
		return current, nil
	}
	if version == 0 {
		return projections.KeyRef{}, unbuildable(fmt.Errorf("c2: no key version in %s", stream))
	}
	recs, err := s.store.ReadStream(ctx, stream, version)
	if err != nil {
		return projections.KeyRef{}, fmt.Errorf("c2: read %s v%d: %w", stream, version, err)
	}
	if len(recs) == 0 || recs[0].Version != version {
		return projections.KeyRef{}, unbuildable(fmt.Errorf("c2: %s v%d: %w: record missing", stream, version, domain.ErrInvalidEvent))
	}
	ev, err := eventcodec.DecodeRecord(&recs[0])
	if err != nil {
		return projections.KeyRef{}, unbuildable(err)
	}
	ref := projections.KeyRef{Stream: stream, Version: version, WireType: recs[0].Type}
	switch e := ev.(type) {
	case *domain.ClientRegistered:
		ref.Sealed, ref.Public = e.Key.Sealed(), e.PublicKey
	case *domain.ClientKeyRotated:
		ref.Sealed = e.Key.Sealed()
	case *domain.TopicCreated:
		ref.Sealed = e.Key.Sealed()
	case *domain.TopicKeyRotated:
		ref.Sealed = e.Key.Sealed()
	case *domain.C2KeyGenerated:
		ref.Sealed, ref.Public = e.Private.Sealed(), e.Public
	default:
		return projections.KeyRef{}, unbuildable(fmt.Errorf("c2: %s v%d is %s: %w: holds no key", stream, version, recs[0].Type, domain.ErrInvalidEvent))
	}
	return ref, nil
}

func (s *Service) clientKeyAt(ctx context.Context, id domain.ID, v uint64) (projections.KeyRef, error) {
	cur, ok := s.ks.ClientKey(id)
	return s.keyAt(ctx, domain.ClientStream(id), v, cur, ok)
}

func (s *Service) topicKeyAt(ctx context.Context, h domain.ID, v uint64) (projections.KeyRef, error) {
	cur, ok := s.ks.TopicKey(h)
	return s.keyAt(ctx, domain.TopicStream(h), v, cur, ok)
}

func (s *Service) c2KeyAt(ctx context.Context, v uint64) (projections.KeyRef, error) {
	cur, ok := s.ks.C2Key()
	return s.keyAt(ctx, domain.C2KeyStream, v, cur, ok)
}

func (s *Service) open(ref projections.KeyRef) ([]byte, error) {
	k, err := eventcodec.OpenSecret(s.sealer, domain.SealedSecret(ref.Sealed), ref.Stream, ref.Version, ref.WireType)
	return k, unbuildable(err)
}

// commandBytes builds the clear command of q. The caller wipes it.
func (s *Service) commandBytes(ctx context.Context, q projections.Queued) ([]byte, error) {
	switch q.Code {
	case core.CmdRemoveTopic:
		return core.EncodeRemoveTopic(q.Topic[:])
	case core.CmdResetTopics:
		return core.EncodeResetTopics(), nil
	case core.CmdResetPubKeys:
		return core.EncodeResetPubKeys(), nil
	case core.CmdRemovePubKey:
		return core.EncodeRemovePubKey(q.Subject[:])
	case core.CmdSetIDKey:
		ref, err := s.clientKeyAt(ctx, q.Subject, q.SubjectKeyVersion)
		if err != nil {
			return nil, err
		}
		key, err := s.open(ref)
		if err != nil {
			return nil, err
		}
		defer clear(key)
		return core.EncodeSetIDKey(key)
	case core.CmdSetTopicKey:
		ref, err := s.topicKeyAt(ctx, q.Topic, q.TopicKeyVersion)
		if err != nil {
			return nil, err
		}
		key, err := s.open(ref)
		if err != nil {
			return nil, err
		}
		defer clear(key)
		return core.EncodeSetTopicKey(key, q.Topic[:])
	case core.CmdSetPubKey:
		if s.pk == nil {
			return nil, domain.ErrWrongMode
		}
		ref, err := s.clientKeyAt(ctx, q.Subject, q.SubjectKeyVersion)
		if err != nil {
			return nil, err
		}
		sp, err := s.pk.SigningPublicKey(ref.Public)
		if err != nil {
			return nil, unbuildable(err)
		}
		return core.EncodeSetPubKey(sp, q.Subject[:])
	case core.CmdSetC2Key:
		ref, err := s.c2KeyAt(ctx, q.NewC2KeyVersion)
		if err != nil {
			return nil, err
		}
		return core.EncodeSetC2Key(ref.Public)
	}
	return nil, unbuildable(fmt.Errorf("c2: %w: %s", core.ErrInvalidCommand, q.Code))
}

// BuildCommand returns the control topic and protected payload of a queued
// command, timestamped with the service clock.
func (s *Service) BuildCommand(ctx context.Context, q projections.Queued) (topic string, payload []byte, err error) {
	return s.BuildCommandAt(ctx, q, s.clock())
}

// BuildCommandAt builds a queued command at time now: it unseals the key
// arguments and protects the command with the key version the queue names
// (SK: suite.Protect with the client key; PK: suite.ProtectCommand with the
// C2 pair and the client public key). Clear keys are wiped before return.
func (s *Service) BuildCommandAt(ctx context.Context, q projections.Queued, now time.Time) (topic string, payload []byte, err error) {
	cmd, err := s.commandBytes(ctx, q)
	if err != nil {
		if core.IsCommandError(err) {
			err = unbuildable(err)
		}
		return "", nil, fmt.Errorf("c2: build %s for %s: %w", q.Code, q.Client, err)
	}
	defer clear(cmd)
	// Check the exact lengths of the suite, as the device will.
	if _, err := core.DecodeCommand(cmd, s.suite.Sizes(), s.mode); err != nil {
		return "", nil, fmt.Errorf("c2: build %s for %s: %w", q.Code, q.Client, unbuildable(err))
	}
	switch s.mode {
	case core.SymKey:
		ref, err := s.clientKeyAt(ctx, q.Client, q.KeyVersion)
		if err != nil {
			return "", nil, fmt.Errorf("c2: build %s for %s: %w", q.Code, q.Client, err)
		}
		key, err := s.open(ref)
		if err != nil {
			return "", nil, fmt.Errorf("c2: build %s for %s: %w", q.Code, q.Client, err)
		}
		defer clear(key)
		payload, err = s.suite.Protect(key, cmd, now)
		if err != nil {
			return "", nil, fmt.Errorf("c2: protect %s for %s: %w", q.Code, q.Client, unbuildable(err))
		}
	case core.PubKey:
		cref, err := s.c2KeyAt(ctx, q.C2KeyVersion)
		if err != nil {
			return "", nil, fmt.Errorf("c2: build %s for %s: %w", q.Code, q.Client, err)
		}
		priv, err := s.open(cref)
		if err != nil {
			return "", nil, fmt.Errorf("c2: build %s for %s: %w", q.Code, q.Client, err)
		}
		defer clear(priv)
		pair, err := s.pk.ParseC2Key(priv)
		if err != nil {
			return "", nil, fmt.Errorf("c2: build %s for %s: c2 key: %w", q.Code, q.Client, unbuildable(err))
		}
		pref, err := s.clientKeyAt(ctx, q.Client, q.KeyVersion)
		if err != nil {
			return "", nil, fmt.Errorf("c2: build %s for %s: %w", q.Code, q.Client, err)
		}
		payload, err = s.pk.ProtectCommand(pair, pref.Public, cmd, now)
		if err != nil {
			return "", nil, fmt.Errorf("c2: protect %s for %s: %w", q.Code, q.Client, unbuildable(err))
		}
	}
	return core.ControlTopic(q.Client[:]), payload, nil
}

func (s *Service) recordDelivery(ctx context.Context, o Origin, q projections.Queued, cmd domain.RecordDelivery) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if _, ok := s.ks.QueuedBySeq(q.Client, q.Seq()); !ok {
		return ErrNotPending
	}
	if o.Actor == "" {
		o.Actor = "system"
	}
	if o.CausationID == "" {
		o.CausationID = q.Ref.Event.String()
	}
	cmd.Client, cmd.Ref = q.Client, q.Ref
	d, err := domain.Decide(domain.State{Mode: s.mode}, cmd)
	if err != nil {
		return err
	}
	evs, err := eventcodec.EncodeDecision(d, s.sealer, s.meta(o), s.newID)
	if err != nil {
		return err
	}
	v, err := s.store.Append(ctx, d.Stream, d.Expected, evs...)
	if err != nil {
		return fmt.Errorf("c2: record delivery: %w", err)
	}
	return s.waitStream(ctx, d.Stream, v)
}

// RecordDelivered records that a broker ACCEPTED q (command.delivered.v1;
// the API says "accepted"): the C2's publish completed, which is no
// evidence the device took it. A command no longer pending returns
// ErrNotPending (already recorded: safe to ignore).
func (s *Service) RecordDelivered(ctx context.Context, o Origin, q projections.Queued) error {
	return s.recordDelivery(ctx, o, q, domain.RecordDelivery{})
}

// RecordConfirmed records that the device's own MQTT session completed QoS 2
// for q (command.confirmed.v1, "confirmed"). It settles q like
// RecordDelivered; a command no longer pending returns ErrNotPending.
func (s *Service) RecordConfirmed(ctx context.Context, o Origin, q projections.Queued) error {
	return s.recordDelivery(ctx, o, q, domain.RecordDelivery{Confirmed: true})
}

// RecordFailed records that q was given up; reason must hold no secret.
func (s *Service) RecordFailed(ctx context.Context, o Origin, q projections.Queued, reason string) error {
	return s.recordDelivery(ctx, o, q, domain.RecordDelivery{Failed: true, Reason: reason})
}

// ExportClientKey returns the current SK key of a client in clear (admin
// export; in PK mode the registered public key) and records the export as a
// key.exported.v1 event attributed to o, so every clear-text export is in
// the audit trail. The event holds which key and version, never the key.
func (s *Service) ExportClientKey(ctx context.Context, o Origin, c ClientRef) ([]byte, error) {
	id, err := c.Resolve()
	if err != nil {
		return nil, resolveErr("export_client_key", c, err)
	}
	if _, ok := s.ks.Client(id); !ok {
		return nil, resolveErr("export_client_key", c, domain.ErrUnknownClient)
	}
	ref, ok := s.ks.ClientKey(id)
	if !ok {
		return nil, resolveErr("export_client_key", c, domain.ErrUnknownClient)
	}
	if ref.Public != nil {
		return ref.Public, nil // a public key: nothing secret to record
	}
	if err := s.recordExport(ctx, o, &domain.KeyExported{Client: id, KeyVersion: ref.Version}); err != nil {
		return nil, err
	}
	return s.open(ref)
}

// ExportTopicKey returns the current key of a topic in clear (admin export)
// and records the export like ExportClientKey.
func (s *Service) ExportTopicKey(ctx context.Context, o Origin, topic string) ([]byte, error) {
	h, ref, err := s.topicKeyRef(topic)
	if err != nil {
		return nil, err
	}
	if err := s.recordExport(ctx, o, &domain.KeyExported{Topic: h, KeyVersion: ref.Version}); err != nil {
		return nil, err
	}
	return s.open(ref)
}

// topicKeyRef returns the current key reference of a topic.
func (s *Service) topicKeyRef(topic string) (domain.ID, projections.KeyRef, error) {
	h, err := topicHash("export_topic_key", topic)
	if err != nil {
		return h, projections.KeyRef{}, err
	}
	if _, ok := s.ks.Topic(h); !ok {
		return h, projections.KeyRef{}, &domain.OpError{Op: "export_topic_key", Subject: topic, Err: domain.ErrUnknownTopic}
	}
	ref, _ := s.ks.TopicKey(h)
	return h, ref, nil
}

// recordExport appends a key.exported.v1 event before the key is released:
// if the record cannot be written, the key is not exported.
func (s *Service) recordExport(ctx context.Context, o Origin, ev *domain.KeyExported) error {
	if s.closed.Load() {
		return ErrClosed
	}
	d := domain.Decision{Stream: domain.ExportStream, Expected: eventstore.Any, Events: []domain.Event{ev}}
	evs, err := eventcodec.EncodeDecision(d, s.sealer, s.meta(o), s.newID)
	if err != nil {
		return err
	}
	v, err := s.store.Append(ctx, d.Stream, d.Expected, evs...)
	if err != nil {
		return fmt.Errorf("c2: record key export: %w", err)
	}
	// No read model tracks the export stream's version: wait for the
	// record's global position, so the caller reads the export in the
	// audit trail (read-your-writes, like every other operation).
	recs, err := s.store.ReadStream(ctx, d.Stream, v)
	if err != nil || len(recs) == 0 {
		return fmt.Errorf("c2: read back key export: %w", err)
	}
	return s.WaitPosition(ctx, recs[0].Position)
}

// openTopicKey returns the current key of a topic in clear, for the C2's own
// use (protect/unprotect helpers); it is not an export.
func (s *Service) openTopicKey(topic string) ([]byte, error) {
	_, ref, err := s.topicKeyRef(topic)
	if err != nil {
		return nil, err
	}
	return s.open(ref)
}

// ProtectTopic protects a payload with the topic's current key, for o.
// The use is recorded (key.used.v1, aggregated per minute, see keyuse.go):
// the helper lets its caller encrypt for a topic without holding its key.
func (s *Service) ProtectTopic(ctx context.Context, o Origin, topic string, payload []byte) ([]byte, error) {
	h, ref, err := s.topicKeyRef(topic)
	if err != nil {
		return nil, err
	}
	if err := s.recordKeyUse(ctx, o, h, ref.Version, useProtect); err != nil {
		return nil, err
	}
	key, err := s.open(ref)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	return s.suite.Protect(key, payload, s.clock())
}

// UnprotectTopic opens a message protected with the topic's current key or,
// within the transition period after a rotation, with the previous one.
// The use is recorded like ProtectTopic's, and a message that does not
// open is counted as a failure (probing shows in the audit).
func (s *Service) UnprotectTopic(ctx context.Context, o Origin, topic string, protected []byte) ([]byte, error) {
	h, ref, err := s.topicKeyRef(topic)
	if err != nil {
		return nil, err
	}
	if err := s.recordKeyUse(ctx, o, h, ref.Version, useUnprotect); err != nil {
		return nil, err
	}
	plain, err := s.unprotectTopic(ctx, topic, protected)
	if err != nil {
		s.recordKeyUseFailure(o, h, ref.Version)
	}
	return plain, err
}

func (s *Service) unprotectTopic(ctx context.Context, topic string, protected []byte) ([]byte, error) {
	key, err := s.openTopicKey(topic)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	now := s.clock()
	plain, err := s.suite.Unprotect(key, protected, now, s.window)
	if err == nil || !errors.Is(err, core.ErrNotAuthentic) {
		return plain, err
	}
	h := domain.TopicHash(topic)
	cur, ok := s.ks.TopicKey(h)
	if !ok {
		return nil, err
	}
	prev, rotated, perr := s.previousTopicKey(ctx, h, cur.Version)
	if perr != nil || prev.Version == 0 || now.Sub(rotated) > s.transition {
		return nil, err
	}
	pk, perr := s.open(prev)
	if perr != nil {
		return nil, perr
	}
	defer clear(pk)
	return s.suite.Unprotect(pk, protected, now, s.window)
}

// previousTopicKey finds the key event before version cur in the topic
// stream and the time the current key replaced it.
func (s *Service) previousTopicKey(ctx context.Context, h domain.ID, cur uint64) (projections.KeyRef, time.Time, error) {
	stream := domain.TopicStream(h)
	recs, err := s.store.ReadStream(ctx, stream, 1)
	if err != nil {
		return projections.KeyRef{}, time.Time{}, err
	}
	var prev projections.KeyRef
	var rotated time.Time
	for i := range recs {
		r := &recs[i]
		if r.Version > cur {
			break
		}
		switch domain.TypeOf(r.Type) {
		case domain.TypeTopicCreated, domain.TypeTopicKeyRotated:
			if r.Version == cur {
				rotated = r.Meta.Time
				if domain.TypeOf(r.Type) == domain.TypeTopicCreated {
					return projections.KeyRef{}, rotated, nil // recreated: no previous key
				}
				continue
			}
			ev, err := eventcodec.DecodeRecord(r)
			if err != nil {
				return projections.KeyRef{}, time.Time{}, err
			}
			sec, _ := domain.SecretOf(ev)
			prev = projections.KeyRef{Stream: stream, Version: r.Version, WireType: r.Type, Sealed: sec.Sealed()}
		}
	}
	return prev, rotated, nil
}
