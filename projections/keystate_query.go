package projections

import (
	"slices"
	"strings"
	"time"

	"github.com/e4c2/e4c2/domain"
)

func (c *clientRec) info(pk bool) ClientInfo {
	ci := ClientInfo{ID: c.id, Name: c.name, Role: c.role, Version: c.version, KeyVersion: c.keyVersion,
		Topics: len(c.topics), Pending: len(c.pending), Created: unixTime(c.created), Updated: unixTime(c.updated)}
	if pk {
		ci.PublicKey = slices.Clone(c.key)
	}
	return ci
}

func (t *topicRec) info() TopicInfo {
	return TopicInfo{Hash: t.hash, Name: t.name, Version: t.version, KeyVersion: t.keyVersion, Members: len(t.members),
		Created: unixTime(t.created), Rotated: unixTime(t.rotated)}
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// isPK: a client key stored in clear is a public key.
func (c *clientRec) isPK() bool { return c.pk }

// ClientView returns the decision view of a client.
func (k *KeyState) ClientView(id domain.ID) domain.ClientView {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.clientView(id)
}

func (k *KeyState) clientView(id domain.ID) domain.ClientView {
	v := domain.ClientView{ID: id}
	if i, ok := k.clientIdx[id]; ok {
		c := &k.clients[i]
		v.Exists, v.Name, v.Role, v.Version, v.KeyVersion = c.live, c.name, c.role, c.version, c.keyVersion
		v.Seen = c.live && c.seen
		v.Released = c.live && c.released
	}
	return v
}

// ClientViews returns the decision views of several clients.
func (k *KeyState) ClientViews(ids []domain.ID) []domain.ClientView {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]domain.ClientView, len(ids))
	for i, id := range ids {
		out[i] = k.clientView(id)
	}
	return out
}

// TopicView returns the decision view of a topic with all its members.
func (k *KeyState) TopicView(h domain.ID) domain.TopicView { return k.TopicViewOf(h, nil) }

// TopicViewOf returns the decision view of a topic whose Members are only
// those of the given clients that are linked (all members when only is
// nil). Linking or unlinking one client of a large topic then costs what
// that client's topic list costs, not the topic's size.
func (k *KeyState) TopicViewOf(h domain.ID, only []domain.ID) domain.TopicView {
	k.mu.RLock()
	defer k.mu.RUnlock()
	v := domain.TopicView{Hash: h}
	ti, ok := k.topicIdx[h]
	if !ok {
		return v
	}
	t := &k.topics[ti]
	v.Exists, v.Name, v.Version, v.KeyVersion = t.live, t.name, t.version, t.keyVersion
	member := func(ci int32) domain.Member {
		c := &k.clients[ci]
		return domain.Member{Client: c.id, Role: c.role, KeyVersion: c.keyVersion}
	}
	if only == nil {
		v.Members = make([]domain.Member, len(t.members))
		for j, ci := range t.members {
			v.Members[j] = member(ci)
		}
		return v
	}
	for _, id := range only {
		if ci, ok := k.clientIdx[id]; ok && slices.Contains(k.clients[ci].topics, ti) &&
			!slices.ContainsFunc(v.Members, func(m domain.Member) bool { return m.Client == id }) {
			v.Members = append(v.Members, member(ci))
		}
	}
	return v
}

// C2View returns the decision view of the C2 key pair.
func (k *KeyState) C2View() domain.C2View {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return domain.C2View{Exists: k.c2.keyVersion != 0, Version: k.c2.version, KeyVersion: k.c2.keyVersion}
}

// Members returns every registered client as a decision member.
func (k *KeyState) Members() []domain.Member {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]domain.Member, 0, k.liveClients)
	for i := range k.clients {
		if c := &k.clients[i]; c.live {
			out = append(out, domain.Member{Client: c.id, Role: c.role, KeyVersion: c.keyVersion})
		}
	}
	return out
}

// TokenView returns the decision view of a token.
func (k *KeyState) TokenView(name string) domain.TokenView {
	k.mu.RLock()
	defer k.mu.RUnlock()
	v := domain.TokenView{Name: name}
	if i, ok := k.tokenIdx[name]; ok {
		t := &k.tokens[i]
		v.Exists, v.Version = t.live, t.version
		v.Revoked = !t.live && t.version > 0
		if t.live {
			v.Role = t.role
		}
	}
	for i := range k.tokens {
		if k.tokens[i].live && k.tokens[i].role == domain.TokenAdmin {
			v.Admins++
		}
	}
	return v
}

// Client returns a registered client.
func (k *KeyState) Client(id domain.ID) (ClientInfo, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	i, ok := k.clientIdx[id]
	if !ok || !k.clients[i].live {
		return ClientInfo{}, false
	}
	return k.clients[i].info(k.clients[i].isPK()), true
}

// ClientCount returns the number of registered clients.
func (k *KeyState) ClientCount() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.liveClients
}

// TopicCount returns the number of topics.
func (k *KeyState) TopicCount() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.liveTopics
}

// Clients returns up to limit registered clients in registration order,
// starting at cursor (0 for the first page), and the cursor of the next
// page (0 when there is none). Cursors stay valid while clients are added
// or removed.
func (k *KeyState) Clients(cursor, limit int) ([]ClientInfo, int) {
	return k.clientsWhere(cursor, limit, nil)
}

// Topic returns a topic.
func (k *KeyState) Topic(h domain.ID) (TopicInfo, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	i, ok := k.topicIdx[h]
	if !ok || !k.topics[i].live {
		return TopicInfo{}, false
	}
	return k.topics[i].info(), true
}

// Topics pages through the topics like Clients.
func (k *KeyState) Topics(cursor, limit int) ([]TopicInfo, int) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var out []TopicInfo
	for i := max(cursor, 0); i < len(k.topics); i++ {
		t := &k.topics[i]
		if !t.live {
			continue
		}
		if len(out) == limit {
			return out, i
		}
		out = append(out, t.info())
	}
	return out, 0
}

// TopicClients pages through the clients linked to a topic, in link order.
// ok is false for an unknown topic.
func (k *KeyState) TopicClients(h domain.ID, cursor, limit int) (out []ClientInfo, next int, ok bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	ti, found := k.topicIdx[h]
	if !found || !k.topics[ti].live {
		return nil, 0, false
	}
	ms := k.topics[ti].members
	for i := max(cursor, 0); i < len(ms); i++ {
		if len(out) == limit {
			return out, i, true
		}
		c := &k.clients[ms[i]]
		out = append(out, c.info(c.isPK()))
	}
	return out, 0, true
}

// ClientTopics pages through the topics of a client, in link order. ok is
// false for an unknown client.
func (k *KeyState) ClientTopics(id domain.ID, cursor, limit int) (out []TopicInfo, next int, ok bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	ci, found := k.clientIdx[id]
	if !found || !k.clients[ci].live {
		return nil, 0, false
	}
	ts := k.clients[ci].topics
	for i := max(cursor, 0); i < len(ts); i++ {
		if len(out) == limit {
			return out, i, true
		}
		out = append(out, k.topics[ts[i]].info())
	}
	return out, 0, true
}

// C2 returns the C2 key pair state.
func (k *KeyState) C2() C2Info {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return C2Info{Exists: k.c2.keyVersion != 0, Version: k.c2.version, KeyVersion: k.c2.keyVersion,
		PublicKey: slices.Clone(k.c2.public)}
}

func (t *tokenRec) info() TokenInfo {
	return TokenInfo{Name: t.name, Role: t.role, Hash: t.hash, Version: t.version, Created: t.created}
}

// Token returns a live token by name.
func (k *KeyState) Token(name string) (TokenInfo, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	i, ok := k.tokenIdx[name]
	if !ok || !k.tokens[i].live {
		return TokenInfo{}, false
	}
	return k.tokens[i].info(), true
}

// TokenByHash returns the live token whose secret hashes to h.
func (k *KeyState) TokenByHash(h [32]byte) (TokenInfo, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	i, ok := k.tokenHash[h]
	if !ok || !k.tokens[i].live {
		return TokenInfo{}, false
	}
	return k.tokens[i].info(), true
}

// Tokens returns the live tokens in creation order.
func (k *KeyState) Tokens() []TokenInfo {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var out []TokenInfo
	for i := range k.tokens {
		if k.tokens[i].live {
			out = append(out, k.tokens[i].info())
		}
	}
	return out
}

// Pending returns up to limit (all if limit <= 0) queued commands of a
// client, oldest first.
func (k *KeyState) Pending(id domain.ID, limit int) []Queued {
	k.mu.RLock()
	defer k.mu.RUnlock()
	i, ok := k.clientIdx[id]
	if !ok {
		return nil
	}
	p := k.clients[i].pending
	if limit > 0 && len(p) > limit {
		p = p[:limit]
	}
	return slices.Clone(p)
}

// PendingClients returns the clients with queued commands, the one whose
// oldest command is oldest first.
func (k *KeyState) PendingClients() []domain.ID {
	k.mu.RLock()
	defer k.mu.RUnlock()
	type head struct {
		id  domain.ID
		pos uint64
	}
	var hs []head
	if k.pendingCount > 0 {
		for i := range k.clients {
			if p := k.clients[i].pending; len(p) > 0 {
				hs = append(hs, head{k.clients[i].id, p[0].Position})
			}
		}
	}
	slices.SortFunc(hs, func(a, b head) int {
		switch {
		case a.pos < b.pos:
			return -1
		case a.pos > b.pos:
			return 1
		}
		return 0
	})
	out := make([]domain.ID, len(hs))
	for i, h := range hs {
		out[i] = h.id
	}
	return out
}

// PendingCount returns the number of queued commands of every client.
func (k *KeyState) PendingCount() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.pendingCount
}

// ClientKey returns the current key of a client (registered or removed:
// a removed client may still have a ResetTopics to receive).
func (k *KeyState) ClientKey(id domain.ID) (KeyRef, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	i, ok := k.clientIdx[id]
	if !ok || k.clients[i].keyVersion == 0 {
		return KeyRef{}, false
	}
	c := &k.clients[i]
	ref := KeyRef{Stream: domain.ClientStream(id), Version: c.keyVersion, WireType: c.keyType.WireName()}
	if c.isPK() {
		ref.Public = slices.Clone(c.key)
	} else {
		ref.Sealed = slices.Clone(c.key)
	}
	return ref, true
}

// TopicKey returns the current key of a topic.
func (k *KeyState) TopicKey(h domain.ID) (KeyRef, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	i, ok := k.topicIdx[h]
	if !ok || k.topics[i].keyVersion == 0 {
		return KeyRef{}, false
	}
	t := &k.topics[i]
	return KeyRef{Stream: domain.TopicStream(h), Version: t.keyVersion, WireType: t.keyType.WireName(),
		Sealed: slices.Clone(t.key)}, true
}

// C2Key returns the current C2 key pair.
func (k *KeyState) C2Key() (KeyRef, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.c2.keyVersion == 0 {
		return KeyRef{}, false
	}
	return KeyRef{Stream: domain.C2KeyStream, Version: k.c2.keyVersion,
		WireType: domain.TypeC2KeyGenerated.WireName(),
		Sealed:   slices.Clone(k.c2.sealed), Public: slices.Clone(k.c2.public)}, true
}

// StreamVersion returns the version of a stream as applied (0 if unknown):
// callers wait on it after an append to read their own writes.
func (k *KeyState) StreamVersion(stream string) uint64 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	parse := func(prefix string) (domain.ID, bool) {
		id, err := domain.ParseID(stream[len(prefix):])
		return id, err == nil
	}
	switch {
	case stream == domain.C2KeyStream:
		return k.c2.version
	case strings.HasPrefix(stream, domain.ClientStreamPrefix):
		if id, ok := parse(domain.ClientStreamPrefix); ok {
			if i, ok := k.clientIdx[id]; ok {
				return k.clients[i].version
			}
		}
	case strings.HasPrefix(stream, domain.DeliveryStreamPrefix):
		if id, ok := parse(domain.DeliveryStreamPrefix); ok {
			if i, ok := k.clientIdx[id]; ok {
				return k.clients[i].deliveryVersion
			}
		}
	case strings.HasPrefix(stream, domain.TopicStreamPrefix):
		if id, ok := parse(domain.TopicStreamPrefix); ok {
			if i, ok := k.topicIdx[id]; ok {
				return k.topics[i].version
			}
		}
	case strings.HasPrefix(stream, domain.TokenStreamPrefix):
		if i, ok := k.tokenStrm[stream]; ok {
			return k.tokens[i].version
		}
	}
	return 0
}

// PendingAfter returns up to limit queued commands of every client with
// Seq > after, in Seq order (per-client FIFO included): the delivery
// worker's cursor-based view of the queue.
func (k *KeyState) PendingAfter(after uint64, limit int) []Queued {
	k.mu.RLock()
	defer k.mu.RUnlock()
	i, _ := slices.BinarySearchFunc(k.order, after+1, func(o orderItem, s uint64) int {
		switch {
		case o.seq < s:
			return -1
		case o.seq > s:
			return 1
		}
		return 0
	})
	var out []Queued
	for ; i < len(k.order) && (limit <= 0 || len(out) < limit); i++ {
		o := k.order[i]
		if o.ci < 0 {
			continue
		}
		for j := range k.clients[o.ci].pending {
			if q := &k.clients[o.ci].pending[j]; q.Seq() == o.seq {
				out = append(out, *q)
				break
			}
		}
	}
	return out
}

// QueuedBySeq returns the queued command of a client with the given Seq, if
// it is still pending.
func (k *KeyState) QueuedBySeq(id domain.ID, seq uint64) (Queued, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	ci, ok := k.clientIdx[id]
	if !ok {
		return Queued{}, false
	}
	for j := range k.clients[ci].pending {
		if q := &k.clients[ci].pending[j]; q.Seq() == seq {
			return *q, true
		}
	}
	return Queued{}, false
}
