package http

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/projections"
)

// ServiceBackend adapts the C2 application service (*c2.Service) to
// Backend: it resolves client references, converts read models to this
// package's JSON views and renders log records without their sealed
// payloads. It holds no state of its own.
type ServiceBackend struct {
	svc *c2.Service
}

// NewServiceBackend wraps svc; the composition root passes the result to New.
func NewServiceBackend(svc *c2.Service) *ServiceBackend { return &ServiceBackend{svc: svc} }

var _ Backend = (*ServiceBackend)(nil)

func origin(by Caller) c2.Origin {
	return c2.Origin{Actor: by.Actor, CorrelationID: by.CorrelationID}
}

// ref turns a user's client reference into a c2.ClientRef: a registered
// name wins, then a 32-character hex id, then the name (whose id may name
// a removed client, for the audit).
func (b *ServiceBackend) ref(s string) c2.ClientRef {
	if _, err := b.svc.Client(c2.ByName(s)); err == nil {
		return c2.ByName(s)
	}
	if id, err := domain.ParseID(s); err == nil {
		return c2.ByID(id)
	}
	return c2.ByName(s)
}

// refID is ref's id, for filters.
func (b *ServiceBackend) refID(s string) (domain.ID, error) {
	id, err := b.ref(s).Resolve()
	if err != nil {
		return id, fmt.Errorf("http: client %q: %w", s, err)
	}
	return id, nil
}

func clientView(ci projections.ClientInfo) Client {
	return Client{Name: ci.Name, ID: ci.ID.String(), Role: ci.Role.String(), KeyVersion: ci.KeyVersion,
		Topics: ci.Topics, Pending: ci.Pending, CreatedAt: ci.Created, UpdatedAt: ci.Updated}
}

func topicView(ti projections.TopicInfo) Topic {
	return Topic{Name: ti.Name, Hash: ti.Hash.String(), KeyVersion: ti.KeyVersion, Clients: ti.Members,
		CreatedAt: ti.Created, RotatedAt: ti.Rotated}
}

func tokenView(ti projections.TokenInfo) Token {
	return Token{Name: ti.Name, Role: Role(ti.Role.String()), CreatedAt: ti.Created, Hash: ti.Hash}
}

func mapSlice[T, U any](in []T, f func(T) U) []U {
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// NewClient implements Backend.
func (b *ServiceBackend) NewClient(ctx context.Context, by Caller, req NewClientRequest) (Client, error) {
	var role domain.Role // with Replace, no role keeps the client's
	if req.Role != "" || !req.Replace {
		r, err := domain.ParseRole(req.Role)
		if err != nil {
			return Client{}, err
		}
		role = r
	}
	r := c2.ClientRef{Name: req.Name, ID: req.ID}
	if req.Name != "" {
		r.ID = nil // the name fixes the id; the handler checked they agree
	}
	key := req.Key
	if key == nil {
		key = req.PublicKey
	}
	register := b.svc.NewClient
	if req.Replace {
		register = b.svc.ReplaceClient
	}
	if _, err := register(ctx, origin(by), r, key, role); err != nil {
		return Client{}, err
	}
	ci, err := b.svc.Client(r)
	if err != nil {
		return Client{}, err
	}
	return clientView(ci), nil
}

// RemoveClient implements Backend.
func (b *ServiceBackend) RemoveClient(ctx context.Context, by Caller, client string, resetFirst bool) error {
	_, err := b.svc.RemoveClient(ctx, origin(by), b.ref(client), resetFirst)
	return err
}

// NewClientKey implements Backend.
func (b *ServiceBackend) NewClientKey(ctx context.Context, by Caller, client string) error {
	_, err := b.svc.NewClientKey(ctx, origin(by), b.ref(client))
	return err
}

// ResetClient implements Backend.
func (b *ServiceBackend) ResetClient(ctx context.Context, by Caller, client string) error {
	_, err := b.svc.ResetClient(ctx, origin(by), b.ref(client))
	return err
}

// NewTopic implements Backend.
func (b *ServiceBackend) NewTopic(ctx context.Context, by Caller, topic string) (bool, error) {
	res, err := b.svc.NewTopic(ctx, origin(by), topic)
	return res.Rotated, err
}

// RotateTopic implements Backend.
func (b *ServiceBackend) RotateTopic(ctx context.Context, by Caller, topic string) error {
	_, err := b.svc.RotateTopic(ctx, origin(by), topic)
	return err
}

// RemoveTopic implements Backend.
func (b *ServiceBackend) RemoveTopic(ctx context.Context, by Caller, topic string) error {
	_, err := b.svc.RemoveTopic(ctx, origin(by), topic)
	return err
}

// AttachClient implements Backend.
func (b *ServiceBackend) AttachClient(ctx context.Context, by Caller, client, topic string) error {
	_, err := b.svc.NewTopicClient(ctx, origin(by), b.ref(client), topic)
	return err
}

// AttachClients implements BatchAttacher: one decision for the whole batch.
func (b *ServiceBackend) AttachClients(ctx context.Context, by Caller, topic string, clients []string) error {
	refs := make([]c2.ClientRef, len(clients))
	for i, c := range clients {
		refs[i] = b.ref(c)
	}
	_, err := b.svc.AttachClients(ctx, origin(by), topic, refs)
	return err
}

// DetachClient implements Backend.
func (b *ServiceBackend) DetachClient(ctx context.Context, by Caller, client, topic string) error {
	_, err := b.svc.RemoveTopicClient(ctx, origin(by), b.ref(client), topic)
	return err
}

// ResetClientPubKeys implements Backend.
func (b *ServiceBackend) ResetClientPubKeys(ctx context.Context, by Caller, client string) error {
	_, err := b.svc.ResetClientPubKeys(ctx, origin(by), b.ref(client))
	return err
}

// SendClientPubKey implements Backend.
func (b *ServiceBackend) SendClientPubKey(ctx context.Context, by Caller, dst, src string) error {
	_, err := b.svc.SendClientPubKey(ctx, origin(by), b.ref(dst), b.ref(src))
	return err
}

// RemoveClientPubKey implements Backend.
func (b *ServiceBackend) RemoveClientPubKey(ctx context.Context, by Caller, dst, src string) error {
	_, err := b.svc.RemoveClientPubKey(ctx, origin(by), b.ref(dst), b.ref(src))
	return err
}

// NewC2Key implements Backend.
func (b *ServiceBackend) NewC2Key(ctx context.Context, by Caller) error {
	_, err := b.svc.NewC2Key(ctx, origin(by))
	return err
}

// Client implements Backend.
func (b *ServiceBackend) Client(ctx context.Context, client string) (Client, error) {
	r := b.ref(client)
	ci, err := b.svc.Client(r)
	if err != nil {
		return Client{}, err
	}
	v := clientView(ci)
	if d, err := b.svc.DeviceSync(r); err == nil {
		v.Sync = syncView(d)
	}
	return v, nil
}

func keySync(k projections.KeySync) KeySync {
	return KeySync{Desired: k.Desired, Accepted: k.Accepted, Confirmed: k.Confirmed}
}

func syncView(d projections.DeviceSync) *ClientSync {
	cs := &ClientSync{Status: d.Status, Evidence: d.Evidence, Seen: d.Seen, FirstSeen: d.FirstSeen, Released: d.Released,
		Pending: d.Pending, OldestPending: d.OldestPending, Identity: keySync(d.Identity),
		Topics: make([]TopicSync, len(d.Topics))}
	if d.PK {
		c2k := keySync(d.C2Key)
		cs.C2Key = &c2k
	}
	for i, t := range d.Topics {
		cs.Topics[i] = TopicSync{Topic: t.Name, Hash: t.Topic.String(), KeySync: keySync(t.KeySync)}
	}
	for _, p := range d.PubKeys {
		name := p.Name
		if name == "" {
			name = p.Peer.String()
		}
		cs.PubKeys = append(cs.PubKeys, PubKeySync{Client: name, ID: p.Peer.String(), Removed: !p.PeerLive, KeySync: keySync(p.KeySync)})
	}
	return cs
}

// Fleet implements Backend.
func (b *ServiceBackend) Fleet(ctx context.Context) (FleetSummary, error) {
	f := b.svc.FleetSummary()
	return FleetSummary{Clients: f.Clients, InSync: f.InSync, Lagging: f.Lagging, NeverSeen: f.NeverSeen, Pending: f.Pending,
		Waiting: f.Waiting, Released: f.Released}, nil
}

// Release implements Backend.
func (b *ServiceBackend) Release(ctx context.Context, by Caller, client string) (ReleaseResult, error) {
	r, err := b.svc.Release(ctx, origin(by), b.ref(client))
	return ReleaseResult{Client: client, Released: r.Released, Commands: r.Commands}, err
}

// ReleaseAll implements Backend.
func (b *ServiceBackend) ReleaseAll(ctx context.Context, by Caller) (ReleaseResult, error) {
	r, err := b.svc.ReleaseAll(ctx, origin(by))
	return ReleaseResult{Released: r.Released, Commands: r.Commands}, err
}

// Resync implements Backend.
func (b *ServiceBackend) Resync(ctx context.Context, by Caller, client string, full bool) (int, error) {
	res, err := b.svc.Resync(ctx, origin(by), b.ref(client), full)
	return res.Queued, err
}

// ResyncAll implements Backend.
func (b *ServiceBackend) ResyncAll(ctx context.Context, by Caller, full bool) (int, error) {
	return b.svc.ResyncAll(ctx, origin(by), full)
}

// Clients implements Backend.
func (b *ServiceBackend) Clients(ctx context.Context, p PageRequest) (Page[Client], error) {
	cs, next, err := b.svc.Clients(p.Cursor, p.Limit)
	if err != nil {
		return Page[Client]{}, err
	}
	return Page[Client]{Items: mapSlice(cs, clientView), Next: next}, nil
}

// CountClients implements Backend.
func (b *ServiceBackend) CountClients(ctx context.Context) (int, error) {
	return b.svc.CountClients(), nil
}

// Topic implements Backend.
func (b *ServiceBackend) Topic(ctx context.Context, topic string) (Topic, error) {
	ti, err := b.svc.Topic(topic)
	if err != nil {
		return Topic{}, err
	}
	return topicView(ti), nil
}

// Topics implements Backend.
func (b *ServiceBackend) Topics(ctx context.Context, p PageRequest) (Page[Topic], error) {
	ts, next, err := b.svc.Topics(p.Cursor, p.Limit)
	if err != nil {
		return Page[Topic]{}, err
	}
	return Page[Topic]{Items: mapSlice(ts, topicView), Next: next}, nil
}

// C2PublicKey implements Backend.
func (b *ServiceBackend) C2PublicKey(ctx context.Context) (C2Key, error) {
	info := b.svc.C2()
	if !info.Exists {
		return C2Key{}, fmt.Errorf("c2 public key: %w", domain.ErrNoC2Key)
	}
	return C2Key{Suite: b.svc.Suite().Name(), KeyVersion: info.KeyVersion, PublicKey: hex.EncodeToString(info.PublicKey)}, nil
}

// CountTopics implements Backend.
func (b *ServiceBackend) CountTopics(ctx context.Context) (int, error) {
	return b.svc.CountTopics(), nil
}

// TopicClients implements Backend.
func (b *ServiceBackend) TopicClients(ctx context.Context, topic string, p PageRequest) (Page[Client], error) {
	cs, next, err := b.svc.TopicClients(topic, p.Cursor, p.Limit)
	if err != nil {
		return Page[Client]{}, err
	}
	return Page[Client]{Items: mapSlice(cs, clientView), Next: next}, nil
}

// ClientTopics implements Backend.
func (b *ServiceBackend) ClientTopics(ctx context.Context, client string, p PageRequest) (Page[Topic], error) {
	ts, next, err := b.svc.ClientTopics(b.ref(client), p.Cursor, p.Limit)
	if err != nil {
		return Page[Topic]{}, err
	}
	return Page[Topic]{Items: mapSlice(ts, topicView), Next: next}, nil
}

// parseSeq reads a numeric cursor of the adapter's own (audit positions,
// delivery sequence numbers).
func parseSeq(cursor string) (uint64, error) {
	if cursor == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(cursor, 10, 64)
	if err != nil {
		return 0, c2.ErrInvalidCursor
	}
	return n, nil
}

// auditView converts an audit entry; clients are shown by hex id (the
// audit outlives client names), with the name when the client is known.
func (b *ServiceBackend) auditView(e projections.AuditEntry) AuditEntry {
	out := AuditEntry{Position: e.Position, Time: e.Time, Type: e.Type, Actor: e.Actor,
		CorrelationID: e.CorrelationID, CausationID: e.CausationID, EventID: e.EventID, Stream: e.Stream,
		KeyVersion: e.KeyVersion, Command: e.Command, Recipients: len(e.Recipients), Summary: e.Detail,
		Topic: e.TopicName}
	if !e.Client.IsZero() {
		out.ClientID = e.Client.String()
		if ci, err := b.svc.Client(c2.ByID(e.Client)); err == nil {
			out.Client = ci.Name
		}
	}
	if !e.Topic.IsZero() {
		out.TopicHash = e.Topic.String()
	}
	return out
}

// Audit implements Backend.
func (b *ServiceBackend) Audit(ctx context.Context, q AuditQuery) (Page[AuditEntry], error) {
	after, err := parseSeq(q.Page.Cursor)
	if err != nil {
		return Page[AuditEntry]{}, err
	}
	pq := projections.AuditQuery{Actor: q.Actor, Type: q.Type, Since: q.From, Until: q.To, After: after, Limit: q.Page.Limit}
	if q.Client != "" {
		id, err := b.refID(q.Client)
		if err != nil {
			return Page[AuditEntry]{}, err
		}
		pq.Client = &id
	}
	if q.Topic != "" {
		h := domain.TopicHash(q.Topic)
		pq.Topic = &h
	}
	es, next := b.svc.Audit(pq)
	out := Page[AuditEntry]{Items: mapSlice(es, b.auditView)}
	if next != 0 {
		out.Next = strconv.FormatUint(next, 10)
	}
	return out, nil
}

func deliveryView(q projections.Queued) Delivery {
	d := Delivery{CommandID: q.Ref.String(), Seq: q.Seq(), Client: q.Client.String(), Command: q.Code.String(),
		QueuedAt: q.Time, Position: q.Position, KeyVersion: q.KeyVersion}
	if !q.Topic.IsZero() {
		d.Topic = q.Topic.String()
	}
	return d
}

// PendingDeliveries implements Backend. The cursor is the Seq of the last
// command returned.
func (b *ServiceBackend) PendingDeliveries(ctx context.Context, client string, p PageRequest) (Page[Delivery], error) {
	after, err := parseSeq(p.Cursor)
	if err != nil {
		return Page[Delivery]{}, err
	}
	var qs []projections.Queued
	if client == "" {
		qs = b.svc.PendingAfter(after, p.Limit+1)
	} else {
		r := b.ref(client)
		if _, err := b.svc.Client(r); err != nil {
			return Page[Delivery]{}, err
		}
		id, _ := r.Resolve()
		for _, q := range b.svc.PendingFor(id, 0) {
			if q.Seq() > after {
				qs = append(qs, q)
				if len(qs) > p.Limit {
					break
				}
			}
		}
	}
	var out Page[Delivery]
	if len(qs) > p.Limit {
		qs = qs[:p.Limit]
		out.Next = strconv.FormatUint(qs[len(qs)-1].Seq(), 10)
	}
	out.Items = mapSlice(qs, deliveryView)
	return out, nil
}

// Subscribe implements Backend. Each record is shown as its audit entry:
// the payload itself (sealed keys included) never leaves the server.
func (b *ServiceBackend) Subscribe(ctx context.Context, from uint64, fn func(Event) error) error {
	audit := projections.NewAudit(1) // names topics seen since from
	return b.svc.Subscribe(ctx, from, func(r eventstore.Record) error {
		ev := Event{Position: r.Position, Stream: r.Stream, Version: r.Version, Type: r.Type, Time: r.Meta.Time,
			Actor: r.Meta.Actor, CorrelationID: r.Meta.CorrelationID, CausationID: r.Meta.CausationID}
		if err := audit.Apply(r); err != nil {
			return fmt.Errorf("http: rendering event %d: %w", r.Position, err)
		}
		if es, _ := audit.Query(projections.AuditQuery{After: r.Position - 1, Limit: 1}); len(es) == 1 && es[0].Position == r.Position {
			data, err := json.Marshal(b.auditView(es[0]))
			if err != nil {
				return fmt.Errorf("http: rendering event %d: %w", r.Position, err)
			}
			ev.Data = data
		}
		return fn(ev)
	})
}

// Protect implements Backend.
func (b *ServiceBackend) Protect(ctx context.Context, by Caller, topic string, payload []byte) ([]byte, error) {
	return b.svc.ProtectTopic(ctx, origin(by), topic, payload)
}

// Unprotect implements Backend.
func (b *ServiceBackend) Unprotect(ctx context.Context, by Caller, topic string, protected []byte) ([]byte, error) {
	return b.svc.UnprotectTopic(ctx, origin(by), topic, protected)
}

// CreateToken implements Backend.
func (b *ServiceBackend) CreateToken(ctx context.Context, by Caller, name string, role Role) (string, Token, error) {
	r, err := domain.ParseTokenRole(string(role))
	if err != nil {
		return "", Token{}, err
	}
	secret, _, err := b.svc.CreateToken(ctx, origin(by), name, r)
	if err != nil {
		return "", Token{}, err
	}
	ti, err := b.svc.Token(name)
	if err != nil {
		return "", Token{}, err
	}
	t := tokenView(ti)
	t.CreatedBy = by.Actor
	return secret, t, nil
}

// Tokens implements Backend.
func (b *ServiceBackend) Tokens(ctx context.Context) ([]Token, error) {
	return mapSlice(b.svc.Tokens(), tokenView), nil
}

// RevokeToken implements Backend.
func (b *ServiceBackend) RevokeToken(ctx context.Context, by Caller, name string) error {
	_, err := b.svc.RevokeToken(ctx, origin(by), name)
	return err
}

// TokenByHash implements Backend.
func (b *ServiceBackend) TokenByHash(ctx context.Context, sum [32]byte) (Token, error) {
	ti, err := b.svc.TokenByHash(sum)
	if err != nil {
		return Token{}, err
	}
	return tokenView(ti), nil
}

// ExportClientKey implements Backend.
func (b *ServiceBackend) ExportClientKey(ctx context.Context, by Caller, client string) ([]byte, error) {
	return b.svc.ExportClientKey(ctx, origin(by), b.ref(client))
}

// ExportTopicKey implements Backend.
func (b *ServiceBackend) ExportTopicKey(ctx context.Context, by Caller, topic string) ([]byte, error) {
	return b.svc.ExportTopicKey(ctx, origin(by), topic)
}
