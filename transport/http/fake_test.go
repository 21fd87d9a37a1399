package http

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/suites/core"
)

// fakeBackend is an in-memory Backend for the transport tests. It keeps
// real random keys so the leak scan has something to look for, and a log
// of events so the SSE tests exercise catch-up then live delivery.
type fakeBackend struct {
	mu      sync.Mutex
	pk      bool                   // PK mode
	clients map[string]*fakeClient // by name
	topics  map[string]*fakeTopic
	tokens  map[[32]byte]*fakeToken
	events  []Event
	notify  chan struct{} // closed and replaced on every append
	now     time.Time

	// calls records the Caller of every mutation, for attribution tests.
	calls []Caller
	// lastPage records the last PageRequest seen, for clamp tests.
	lastPage PageRequest
	// subs counts running subscriptions (SSE cleanup tests).
	subs atomic.Int32
	// history holds every key ever set, for the leak scan.
	history [][]byte
	// failWith, if set, is returned by every operation (error table tests).
	failWith error
}

type fakeClient struct {
	name  string
	id    [16]byte
	key   []byte
	role  string
	links map[string]bool
}

type fakeToken struct {
	Token
	revoked bool
}

type fakeTopic struct {
	name    string
	key     []byte
	version uint64
}

func newFake() *fakeBackend {
	return &fakeBackend{
		clients: map[string]*fakeClient{},
		topics:  map[string]*fakeTopic{},
		tokens:  map[[32]byte]*fakeToken{},
		notify:  make(chan struct{}),
		now:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// addToken registers a token directly and returns its secret.
func (f *fakeBackend) addToken(name string, role Role) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	secret := "e4t_" + hex.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(secret))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[sum] = &fakeToken{Token: Token{Name: name, Role: role, Hash: sum}}
	return secret
}

func (f *fakeBackend) appendEvent(by Caller, stream, typ string, data any) {
	raw, _ := json.Marshal(data)
	f.events = append(f.events, Event{
		Position: uint64(len(f.events) + 1), Stream: stream, Version: 1, Type: typ,
		Time: f.now, Actor: by.Actor, CorrelationID: by.CorrelationID, Data: raw,
	})
	close(f.notify)
	f.notify = make(chan struct{})
}

func (f *fakeBackend) mutate(by Caller) error {
	f.calls = append(f.calls, by)
	return f.failWith
}

// resolve finds a client by name or hex id.
func (f *fakeBackend) resolve(ref string) (*fakeClient, error) {
	if c, ok := f.clients[ref]; ok {
		return c, nil
	}
	if id, err := hex.DecodeString(ref); err == nil && len(id) == 16 {
		for _, c := range f.clients {
			if string(c.id[:]) == string(id) {
				return c, nil
			}
		}
	}
	return nil, &domain.OpError{Op: "resolve", Subject: ref, Err: domain.ErrUnknownClient}
}

func (f *fakeBackend) topic(name string) (*fakeTopic, error) {
	t, ok := f.topics[name]
	if !ok {
		return nil, &domain.OpError{Op: "topic", Subject: name, Err: domain.ErrUnknownTopic}
	}
	return t, nil
}

func (f *fakeBackend) view(c *fakeClient) Client {
	return Client{Name: c.name, ID: hex.EncodeToString(c.id[:]), Role: c.role, Topics: len(c.links), CreatedAt: f.now}
}

func (f *fakeBackend) topicView(t *fakeTopic) Topic {
	n := 0
	for _, c := range f.clients {
		if c.links[t.name] {
			n++
		}
	}
	return Topic{Name: t.name, Hash: hex.EncodeToString(core.HashID([]byte(t.name))), KeyVersion: t.version, Clients: n}
}

func (f *fakeBackend) NewClient(ctx context.Context, by Caller, req NewClientRequest) (Client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate(by); err != nil {
		return Client{}, err
	}
	key := req.Key
	if f.pk {
		key = req.PublicKey
	}
	if len(key) != 32 {
		return Client{}, fmt.Errorf("new_client: %w: need 32 bytes", core.ErrInvalidKey)
	}
	name := req.Name
	var id [16]byte
	if name == "" {
		name = hex.EncodeToString(req.ID)
		copy(id[:], req.ID)
	} else {
		copy(id[:], core.HashID([]byte(name)))
	}
	if old, ok := f.clients[name]; ok {
		if !req.Replace {
			return Client{}, &domain.OpError{Op: "new_client", Subject: name, Err: domain.ErrClientExists}
		}
		old.key = slices.Clone(key)
		f.history = append(f.history, slices.Clone(key))
		f.appendEvent(by, "client-"+hex.EncodeToString(id[:]), "client.key_rotated.v1", map[string]string{"name": name})
		return f.view(old), nil
	}
	c := &fakeClient{name: name, id: id, key: slices.Clone(key), role: req.Role, links: map[string]bool{}}
	f.history = append(f.history, slices.Clone(key))
	if c.role == "" {
		c.role = "both"
	}
	f.clients[name] = c
	f.appendEvent(by, "client-"+hex.EncodeToString(id[:]), "client.created.v1", map[string]string{"name": name})
	return f.view(c), nil
}

func (f *fakeBackend) clientOp(by Caller, ref, typ string, fn func(*fakeClient) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate(by); err != nil {
		return err
	}
	c, err := f.resolve(ref)
	if err != nil {
		return err
	}
	if fn != nil {
		if err := fn(c); err != nil {
			return err
		}
	}
	f.appendEvent(by, "client-"+hex.EncodeToString(c.id[:]), typ, map[string]string{"client": c.name})
	return nil
}

func (f *fakeBackend) RemoveClient(ctx context.Context, by Caller, client string, resetFirst bool) error {
	return f.clientOp(by, client, "client.removed.v1", func(c *fakeClient) error {
		delete(f.clients, c.name)
		return nil
	})
}

func (f *fakeBackend) NewClientKey(ctx context.Context, by Caller, client string) error {
	return f.clientOp(by, client, "client.key_rotated.v1", func(c *fakeClient) error {
		if f.pk {
			return domain.ErrWrongMode
		}
		c.key = make([]byte, 32)
		_, _ = rand.Read(c.key)
		f.history = append(f.history, slices.Clone(c.key))
		return nil
	})
}

func (f *fakeBackend) ResetClient(ctx context.Context, by Caller, client string) error {
	return f.clientOp(by, client, "client.reset.v1", func(c *fakeClient) error {
		c.links = map[string]bool{}
		return nil
	})
}

func (f *fakeBackend) NewTopic(ctx context.Context, by Caller, topic string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate(by); err != nil {
		return false, err
	}
	if _, ok := f.topics[topic]; ok {
		return false, &domain.OpError{Op: "new_topic", Subject: topic, Err: domain.ErrTopicExists}
	}
	f.topics[topic] = &fakeTopic{name: topic}
	f.setTopicKey(by, f.topics[topic])
	return false, nil
}

func (f *fakeBackend) RotateTopic(ctx context.Context, by Caller, topic string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate(by); err != nil {
		return err
	}
	t, ok := f.topics[topic]
	if !ok {
		return &domain.OpError{Op: "new_topic", Subject: topic, Err: domain.ErrUnknownTopic}
	}
	f.setTopicKey(by, t)
	return nil
}

func (f *fakeBackend) setTopicKey(by Caller, t *fakeTopic) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	t.key = key
	t.version++
	f.history = append(f.history, slices.Clone(key))
	f.appendEvent(by, "topic-"+hex.EncodeToString(core.HashID([]byte(t.name))), "topic.key_set.v1", map[string]any{"topic": t.name, "version": t.version})
}

func (f *fakeBackend) RemoveTopic(ctx context.Context, by Caller, topic string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate(by); err != nil {
		return err
	}
	if _, err := f.topic(topic); err != nil {
		return err
	}
	delete(f.topics, topic)
	for _, c := range f.clients {
		delete(c.links, topic)
	}
	f.appendEvent(by, "topic-"+hex.EncodeToString(core.HashID([]byte(topic))), "topic.removed.v1", map[string]string{"topic": topic})
	return nil
}

func (f *fakeBackend) link(by Caller, client, topic string, on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate(by); err != nil {
		return err
	}
	c, err := f.resolve(client)
	if err != nil {
		return err
	}
	if _, err := f.topic(topic); err != nil {
		return err
	}
	typ := "client.topic_attached.v1"
	if on {
		c.links[topic] = true
	} else {
		if !c.links[topic] {
			return &domain.OpError{Op: "remove_topic_client", Subject: c.name, Err: domain.ErrNotLinked}
		}
		delete(c.links, topic)
		typ = "client.topic_detached.v1"
	}
	f.appendEvent(by, "client-"+hex.EncodeToString(c.id[:]), typ, map[string]string{"client": c.name, "topic": topic})
	return nil
}

func (f *fakeBackend) AttachClient(ctx context.Context, by Caller, client, topic string) error {
	return f.link(by, client, topic, true)
}

func (f *fakeBackend) DetachClient(ctx context.Context, by Caller, client, topic string) error {
	return f.link(by, client, topic, false)
}

func (f *fakeBackend) pkOp(by Caller, dst, src, typ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate(by); err != nil {
		return err
	}
	if !f.pk {
		return &domain.OpError{Op: typ, Err: domain.ErrWrongMode}
	}
	d, err := f.resolve(dst)
	if err != nil {
		return err
	}
	if src != "" {
		if _, err := f.resolve(src); err != nil {
			return err
		}
	}
	f.appendEvent(by, "client-"+hex.EncodeToString(d.id[:]), typ, map[string]string{"client": d.name})
	return nil
}

func (f *fakeBackend) ResetClientPubKeys(ctx context.Context, by Caller, client string) error {
	return f.pkOp(by, client, "", "client.pubkeys_reset.v1")
}

func (f *fakeBackend) SendClientPubKey(ctx context.Context, by Caller, dst, src string) error {
	return f.pkOp(by, dst, src, "client.pubkey_sent.v1")
}

func (f *fakeBackend) RemoveClientPubKey(ctx context.Context, by Caller, dst, src string) error {
	return f.pkOp(by, dst, src, "client.pubkey_removed.v1")
}

func (f *fakeBackend) NewC2Key(ctx context.Context, by Caller) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate(by); err != nil {
		return err
	}
	if !f.pk {
		return domain.ErrWrongMode
	}
	f.appendEvent(by, "c2key", "c2key.rotated.v1", map[string]string{})
	return nil
}

func (f *fakeBackend) Client(ctx context.Context, client string) (Client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWith != nil {
		return Client{}, f.failWith
	}
	c, err := f.resolve(client)
	if err != nil {
		return Client{}, err
	}
	return f.view(c), nil
}

// pageNames pages a sorted list of names; the cursor is the last name sent.
func pageNames(names []string, p PageRequest) ([]string, string) {
	sort.Strings(names)
	start := 0
	if p.Cursor != "" {
		start = sort.SearchStrings(names, p.Cursor)
		if start < len(names) && names[start] == p.Cursor {
			start++
		}
	}
	end := min(start+p.Limit, len(names))
	out := names[start:end]
	next := ""
	if end < len(names) {
		next = out[len(out)-1]
	}
	return out, next
}

func (f *fakeBackend) Clients(ctx context.Context, p PageRequest) (Page[Client], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastPage = p
	if f.failWith != nil {
		return Page[Client]{}, f.failWith
	}
	var names []string
	for n := range f.clients {
		names = append(names, n)
	}
	sel, next := pageNames(names, p)
	var out Page[Client]
	for _, n := range sel {
		out.Items = append(out.Items, f.view(f.clients[n]))
	}
	out.Next = next
	return out, nil
}

func (f *fakeBackend) CountClients(ctx context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.clients), f.failWith
}

func (f *fakeBackend) Topic(ctx context.Context, topic string) (Topic, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.topic(topic)
	if err != nil {
		return Topic{}, err
	}
	return f.topicView(t), nil
}

func (f *fakeBackend) Topics(ctx context.Context, p PageRequest) (Page[Topic], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastPage = p
	var names []string
	for n := range f.topics {
		names = append(names, n)
	}
	sel, next := pageNames(names, p)
	var out Page[Topic]
	for _, n := range sel {
		out.Items = append(out.Items, f.topicView(f.topics[n]))
	}
	out.Next = next
	return out, nil
}

func (f *fakeBackend) C2PublicKey(ctx context.Context) (C2Key, error) {
	return C2Key{}, fmt.Errorf("fake: %w", domain.ErrNoC2Key)
}

func (f *fakeBackend) CountTopics(ctx context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.topics), nil
}

func (f *fakeBackend) TopicClients(ctx context.Context, topic string, p PageRequest) (Page[Client], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.topic(topic); err != nil {
		return Page[Client]{}, err
	}
	var names []string
	for n, c := range f.clients {
		if c.links[topic] {
			names = append(names, n)
		}
	}
	sel, next := pageNames(names, p)
	var out Page[Client]
	for _, n := range sel {
		out.Items = append(out.Items, f.view(f.clients[n]))
	}
	out.Next = next
	return out, nil
}

func (f *fakeBackend) ClientTopics(ctx context.Context, client string, p PageRequest) (Page[Topic], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.resolve(client)
	if err != nil {
		return Page[Topic]{}, err
	}
	var names []string
	for n := range c.links {
		names = append(names, n)
	}
	sel, next := pageNames(names, p)
	var out Page[Topic]
	for _, n := range sel {
		out.Items = append(out.Items, f.topicView(f.topics[n]))
	}
	out.Next = next
	return out, nil
}

func (f *fakeBackend) Audit(ctx context.Context, q AuditQuery) (Page[AuditEntry], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	start := uint64(0)
	if q.Page.Cursor != "" {
		if _, err := fmt.Sscanf(q.Page.Cursor, "%d", &start); err != nil {
			return Page[AuditEntry]{}, fmt.Errorf("audit: %w", core.ErrInvalidName)
		}
	}
	var out Page[AuditEntry]
	for _, ev := range f.events[start:] {
		var d map[string]any
		_ = json.Unmarshal(ev.Data, &d)
		cl, _ := d["client"].(string)
		if cl == "" {
			cl, _ = d["name"].(string)
		}
		tp, _ := d["topic"].(string)
		if q.Client != "" && cl != q.Client || q.Topic != "" && tp != q.Topic || q.Actor != "" && ev.Actor != q.Actor {
			continue
		}
		if !q.From.IsZero() && ev.Time.Before(q.From) || !q.To.IsZero() && !ev.Time.Before(q.To) {
			continue
		}
		if len(out.Items) == q.Page.Limit {
			out.Next = fmt.Sprint(out.Items[len(out.Items)-1].Position)
			break
		}
		out.Items = append(out.Items, AuditEntry{Position: ev.Position, Time: ev.Time, Type: ev.Type,
			Actor: ev.Actor, Client: cl, Topic: tp, CorrelationID: ev.CorrelationID})
	}
	return out, nil
}

func (f *fakeBackend) PendingDeliveries(ctx context.Context, client string, p PageRequest) (Page[Delivery], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if client != "" {
		if _, err := f.resolve(client); err != nil {
			return Page[Delivery]{}, err
		}
	}
	return Page[Delivery]{Items: []Delivery{{CommandID: "c1", Client: "x", Command: "SetTopicKey", QueuedAt: f.now}}}, nil
}

func (f *fakeBackend) Subscribe(ctx context.Context, from uint64, fn func(Event) error) error {
	f.subs.Add(1)
	defer f.subs.Add(-1)
	next := max(from, 1)
	for {
		f.mu.Lock()
		batch := slices.Clone(f.events[min(int(next-1), len(f.events)):])
		wait := f.notify
		f.mu.Unlock()
		for _, ev := range batch {
			if err := fn(ev); err != nil {
				return fmt.Errorf("subscribe: %w", err)
			}
			next = ev.Position + 1
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *fakeBackend) aead(topic string) (cipher.AEAD, error) {
	t, err := f.topic(topic)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(t.key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func (f *fakeBackend) Protect(ctx context.Context, by Caller, topic string, payload []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.aead(topic)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, a.NonceSize())
	_, _ = rand.Read(nonce)
	return a.Seal(nonce, nonce, payload, nil), nil
}

func (f *fakeBackend) Unprotect(ctx context.Context, by Caller, topic string, protected []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.aead(topic)
	if err != nil {
		return nil, err
	}
	if len(protected) < a.NonceSize()+a.Overhead() {
		return nil, core.ErrInvalidProtectedLen
	}
	out, err := a.Open(nil, protected[:a.NonceSize()], protected[a.NonceSize():], nil)
	if err != nil {
		return nil, core.ErrNotAuthentic
	}
	return out, nil
}

func (f *fakeBackend) CreateToken(ctx context.Context, by Caller, name string, role Role) (string, Token, error) {
	f.mu.Lock()
	for _, t := range f.tokens {
		if t.Name == name && !t.revoked {
			f.mu.Unlock()
			return "", Token{}, &domain.OpError{Op: "create_token", Subject: name, Err: domain.ErrAlreadyExists}
		}
	}
	f.mu.Unlock()
	secret := f.addToken(name, role)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, by)
	f.appendEvent(by, "token-"+name, "token.created.v1", map[string]string{"name": name})
	return secret, Token{Name: name, Role: role, CreatedAt: f.now, CreatedBy: by.Actor}, nil
}

func (f *fakeBackend) Tokens(ctx context.Context) ([]Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Token
	for _, t := range f.tokens {
		if !t.revoked {
			out = append(out, t.Token)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *fakeBackend) RevokeToken(ctx context.Context, by Caller, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tokens {
		if t.Name == name && !t.revoked {
			t.revoked = true
			f.appendEvent(by, "token-"+name, "token.revoked.v1", map[string]string{"name": name})
			return nil
		}
	}
	return &domain.OpError{Op: "revoke_token", Subject: name, Err: domain.ErrUnknownToken}
}

func (f *fakeBackend) TokenByHash(ctx context.Context, sum [32]byte) (Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tokens[sum]
	if !ok || t.revoked {
		return Token{}, domain.ErrUnknownToken
	}
	return t.Token, nil
}

func (f *fakeBackend) ExportClientKey(ctx context.Context, by Caller, client string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.resolve(client)
	if err != nil {
		return nil, err
	}
	return slices.Clone(c.key), nil
}

func (f *fakeBackend) ExportTopicKey(ctx context.Context, by Caller, topic string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.topic(topic)
	if err != nil {
		return nil, err
	}
	return slices.Clone(t.key), nil
}

// keys returns every key the fake ever held (for the leak scan).
func (f *fakeBackend) keys() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.history)
}

var _ Backend = (*fakeBackend)(nil)

// Fleet implements Backend: the fake never sees a device.
func (f *fakeBackend) Fleet(ctx context.Context) (FleetSummary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return FleetSummary{Clients: len(f.clients), NeverSeen: len(f.clients)}, f.failWith
}

// Resync implements Backend: one SetTopicKey per link with full, else none.
func (f *fakeBackend) Resync(ctx context.Context, by Caller, client string, full bool) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate(by); err != nil {
		return 0, err
	}
	c, err := f.resolve(client)
	if err != nil {
		return 0, err
	}
	if !full {
		return 0, nil
	}
	return len(c.links), nil
}

// Release implements Backend.
func (f *fakeBackend) Release(ctx context.Context, by Caller, client string) (ReleaseResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate(by); err != nil {
		return ReleaseResult{}, err
	}
	if _, err := f.resolve(client); err != nil {
		return ReleaseResult{}, err
	}
	return ReleaseResult{Client: client, Released: 1}, nil
}

// ReleaseAll implements Backend.
func (f *fakeBackend) ReleaseAll(ctx context.Context, by Caller) (ReleaseResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate(by); err != nil {
		return ReleaseResult{}, err
	}
	return ReleaseResult{Released: len(f.clients)}, nil
}

// ResyncAll implements Backend.
func (f *fakeBackend) ResyncAll(ctx context.Context, by Caller, full bool) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mutate(by); err != nil {
		return 0, err
	}
	n := 0
	for _, c := range f.clients {
		if full {
			n += len(c.links)
		}
	}
	return n, nil
}
