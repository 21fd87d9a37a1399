package c2

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/eventcodec"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

// This file is what the traffic monitor (package monitor) asks of the
// service: topic keys with their history, PK signers, and a place to write
// its findings. The monitor is a caller like the API: it reads projections
// through the service and appends through it.

// MonitorActor is the actor of the monitor's events.
const MonitorActor = "monitor"

// VersionedKey is one version of a topic key in clear. Callers wipe it.
type VersionedKey struct {
	Version uint64
	Key     []byte
}

// TopicKeyHistory is a topic's current key, the previous one with the time
// the current one replaced it, and up to n older ones (newest first): what
// a monitor needs to tell a device on the previous key from one that
// missed rotations. Keys are in clear for the caller's memory only: never
// log them; Wipe when done.
type TopicKeyHistory struct {
	Current  VersionedKey
	Previous VersionedKey // Version 0: none
	Replaced time.Time    // when Current replaced Previous
	Older    []VersionedKey
}

// Wipe zeroes every key of h.
func (h *TopicKeyHistory) Wipe() {
	clear(h.Current.Key)
	clear(h.Previous.Key)
	for _, k := range h.Older {
		clear(k.Key)
	}
}

// Window returns the receivers' timestamp window the service applies.
func (s *Service) Window() core.Window { return s.window }

// Transition returns how long a topic's previous key stays valid.
func (s *Service) Transition() time.Duration { return s.transition }

// TopicKeyVersion returns the current key version of the topic with hash
// h (ok false: no such topic). It is cheap: a monitor calls it per
// message to know when its cached keys are stale.
func (s *Service) TopicKeyVersion(h domain.ID) (uint64, bool) {
	ref, ok := s.ks.TopicKey(h)
	return ref.Version, ok
}

// TopicKeyHistory reads the key history of the topic with hash h from its
// stream (the read model keeps only the current key) and opens up to
// older+2 keys. A topic that was removed and created again starts a new
// history: keys from before the re-creation are not returned.
func (s *Service) TopicKeyHistory(ctx context.Context, h domain.ID, older int) (TopicKeyHistory, error) {
	cur, ok := s.ks.TopicKey(h)
	if !ok {
		return TopicKeyHistory{}, fmt.Errorf("c2: topic %s: %w", h, domain.ErrUnknownTopic)
	}
	stream := domain.TopicStream(h)
	recs, err := s.store.ReadStream(ctx, stream, 1)
	if err != nil {
		return TopicKeyHistory{}, fmt.Errorf("c2: read %s: %w", stream, err)
	}
	// refs: the key records of the current generation, oldest first.
	var refs []projections.KeyRef
	var replaced time.Time
	for i := range recs {
		r := &recs[i]
		if r.Version > cur.Version {
			break
		}
		t := domain.TypeOf(r.Type)
		if t != domain.TypeTopicCreated && t != domain.TypeTopicKeyRotated {
			continue
		}
		if t == domain.TypeTopicCreated {
			refs = refs[:0]
		}
		if r.Version == cur.Version {
			replaced = r.Meta.Time
			refs = append(refs, cur)
			continue
		}
		ev, err := eventcodec.DecodeRecord(r)
		if err != nil {
			return TopicKeyHistory{}, err
		}
		sec, _ := domain.SecretOf(ev)
		refs = append(refs, projections.KeyRef{Stream: stream, Version: r.Version, WireType: r.Type, Sealed: sec.Sealed()})
	}
	var hist TopicKeyHistory
	hist.Replaced = replaced
	for i, n := len(refs)-1, 0; i >= 0 && n < older+2; i, n = i-1, n+1 {
		k, err := s.open(refs[i])
		if err != nil {
			hist.Wipe()
			return TopicKeyHistory{}, err
		}
		vk := VersionedKey{Version: refs[i].Version, Key: k}
		switch n {
		case 0:
			hist.Current = vk
		case 1:
			hist.Previous = vk
		default:
			hist.Older = append(hist.Older, vk)
		}
	}
	if hist.Current.Key == nil {
		return TopicKeyHistory{}, fmt.Errorf("c2: topic %s: %w: no key record", h, domain.ErrInvalidEvent)
	}
	return hist, nil
}

// SignerInfo is what the monitor knows of a PK sender.
type SignerInfo struct {
	Client domain.ID
	// SigningKey verifies the client's messages (SetPubKey's form).
	SigningKey []byte
	// Member: linked to the topic asked about; Role its role.
	Member bool
	Role   domain.Role
}

// Signer returns the signing key of client id (PK mode) and whether it is
// a member of the topic with hash h. ok is false for an unknown or removed
// client, and in SK mode.
func (s *Service) Signer(id, h domain.ID) (SignerInfo, bool) {
	if s.pk == nil {
		return SignerInfo{}, false
	}
	ref, ok := s.ks.ClientKey(id)
	if !ok || len(ref.Public) == 0 {
		return SignerInfo{}, false
	}
	if live, _ := s.ks.Seen(id); !live {
		return SignerInfo{}, false
	}
	sp, err := s.pk.SigningPublicKey(ref.Public)
	if err != nil {
		return SignerInfo{}, false
	}
	info := SignerInfo{Client: id, SigningKey: sp}
	info.Member, info.Role = s.ks.Linked(id, h)
	if !info.Member {
		if c, ok := s.ks.Client(id); ok {
			info.Role = c.Role
		}
	}
	return info, true
}

// TopicNames returns the names of the live topics (the topics a monitor
// subscribes to).
func (s *Service) TopicNames() []string {
	m := s.ks.TopicNames()
	out := make([]string, 0, len(m))
	for h, n := range m {
		if _, ok := s.ks.TopicKey(h); ok {
			out = append(out, n)
		}
	}
	return out
}

// maxFindingDetail bounds the detail of a finding.
const maxFindingDetail = 256

// RecordFindings appends the monitor's findings (monitor.finding.v1) to
// the monitor stream, in one append. Details are cut to 256 bytes.
func (s *Service) RecordFindings(ctx context.Context, o Origin, fs []domain.MonitorFinding) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if len(fs) == 0 {
		return nil
	}
	if o.Actor == "" {
		o.Actor = MonitorActor
	}
	evs := make([]domain.Event, len(fs))
	for i := range fs {
		f := fs[i]
		if f.Kind == "" {
			return errors.New("c2: finding without a kind")
		}
		if len(f.Detail) > maxFindingDetail {
			f.Detail = f.Detail[:maxFindingDetail]
		}
		evs[i] = &f
	}
	d := domain.Decision{Stream: domain.MonitorStream, Expected: eventstore.Any, Events: evs}
	recs, err := eventcodec.EncodeDecision(d, s.sealer, s.meta(o), s.newID)
	if err != nil {
		return err
	}
	if _, err := s.store.Append(ctx, d.Stream, d.Expected, recs...); err != nil {
		return fmt.Errorf("c2: record findings: %w", err)
	}
	return nil
}

// Finding is one monitor finding as the console and API show it.
type Finding struct {
	Position  uint64
	Time      time.Time
	TopicName string
	domain.MonitorFinding
}

// FindingQuery selects findings. Zero fields do not filter.
type FindingQuery struct {
	Topic string    // topic name
	Kind  string    // finding kind
	Since time.Time // recorded at or after
	Limit int       // the newest Limit (default 50)
	// Client, if set, keeps the findings naming this publisher.
	Client *domain.ID
}

// Findings returns the newest findings matching q, newest first. It finds
// them in the audit read model (so only within the audit's memory window)
// and decodes each from the log.
func (s *Service) Findings(ctx context.Context, q FindingQuery) ([]Finding, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	aq := projections.AuditQuery{Type: domain.TypeMonitorFinding.WireName(), Since: q.Since, Limit: 1000, Client: q.Client}
	if q.Topic != "" {
		h := domain.TopicHash(q.Topic)
		aq.Topic = &h
	}
	var tail []projections.AuditEntry
	for {
		page, next := s.audit.Query(aq)
		if q.Kind != "" {
			// Keep only this kind before trimming, or a busy other kind
			// would push it out of the tail (the record decides below).
			page = slices.DeleteFunc(page, func(e projections.AuditEntry) bool {
				return !projections.IsFindingOfKind(e, q.Kind)
			})
		}
		tail = append(tail, page...)
		if len(tail) > 4*q.Limit {
			tail = tail[len(tail)-q.Limit:]
		}
		if next == 0 {
			break
		}
		aq.After = next
	}
	out := make([]Finding, 0, min(q.Limit, len(tail)))
	for i := len(tail) - 1; i >= 0 && len(out) < q.Limit; i-- {
		e := &tail[i]
		recs, err := s.store.ReadAll(ctx, e.Position, 1)
		if err != nil {
			return nil, fmt.Errorf("c2: read finding: %w", err)
		}
		if len(recs) == 0 || recs[0].Position != e.Position {
			continue
		}
		ev, err := eventcodec.DecodeRecord(&recs[0])
		if err != nil {
			return nil, err
		}
		f, ok := ev.(*domain.MonitorFinding)
		if !ok || (q.Kind != "" && f.Kind != q.Kind) {
			continue
		}
		out = append(out, Finding{Position: e.Position, Time: e.Time, TopicName: e.TopicName, MonitorFinding: *f})
	}
	return out, nil
}
