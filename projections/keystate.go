package projections

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/eventcodec"
	"github.com/e4c2/e4c2/suites/core"
)

// Queued is a command waiting in a client's delivery queue, with everything
// BuildCommand needs: the command, its key arguments by version and the key
// versions that protect it.
type Queued struct {
	Ref      domain.QueueRef
	Position uint64    // global position of the command.queued event
	Time     time.Time // when it was decided
	Client   domain.ID
	Code     core.CommandCode
	// Arguments, by reference (see domain.CommandQueued).
	Topic             domain.ID
	TopicKeyVersion   uint64
	Subject           domain.ID
	SubjectKeyVersion uint64
	NewC2KeyVersion   uint64
	// KeyVersion is the client key (SK) or client public key (PK) version
	// that protects the command, C2KeyVersion the C2 pair (PK only, 0 in SK).
	KeyVersion   uint64
	C2KeyVersion uint64
}

// KeyRef names a key held sealed in the log: the record (stream, version,
// wire type) whose event carries it, and the sealed bytes (or, for public
// keys, the key itself).
type KeyRef struct {
	Stream   string
	Version  uint64
	WireType string
	Sealed   []byte // nil for public keys
	Public   []byte // PK client public key or C2 public key
}

// ClientInfo is the public view of a client.
type ClientInfo struct {
	ID         domain.ID
	Name       string
	Role       domain.Role
	Version    uint64 // version of client-<id>
	KeyVersion uint64
	PublicKey  []byte // PK mode only
	Topics     int    // number of linked topics
	Pending    int    // queued commands not yet delivered
	Created    time.Time
	Updated    time.Time // last key change
}

// TopicInfo is the public view of a topic.
type TopicInfo struct {
	Hash       domain.ID
	Name       string
	Version    uint64
	KeyVersion uint64
	Members    int
	Created    time.Time
	Rotated    time.Time // current key
}

// C2Info is the public view of the C2 key pair.
type C2Info struct {
	Exists     bool
	Version    uint64
	KeyVersion uint64
	PublicKey  []byte
}

// TokenInfo is the view of an API token (its hash only, never a secret).
type TokenInfo struct {
	Name    string
	Role    domain.TokenRole
	Hash    [32]byte
	Version uint64
	Created time.Time
}

type clientRec struct {
	id              domain.ID
	live            bool
	pk              bool // key is a PK public key, in clear
	role            domain.Role
	keyType         domain.Type
	name            string
	version         uint64
	keyVersion      uint64
	deliveryVersion uint64
	c2Version       uint64 // C2 pair the device knows (PK)
	created         int64  // Unix ns of the first registration
	updated         int64  // Unix ns of the last key change
	key             []byte // sealed SK key or PK public key
	topics          []int32
	// acks runs parallel to topics: the topic key versions a broker
	// accepted and the device's session confirmed (see sync.go).
	acks    []keyAck
	pending []Queued
	// What the device is known to hold: its client key (SK; the
	// registered key counts as confirmed, it is provisioned out of band)
	// and the C2 pair (PK).
	idKey, c2 keyAck
	seen      bool
	seenAt    int64 // Unix ns of the first device.seen since registration
	// released: an operator released its commands since its registration
	// (device.released): an external broker gets them unseen.
	released bool
	// pubkeys: the peers whose public keys the device was sent (PK, see
	// pubkeys.go); holders: the clients with a record of this one's key.
	pubkeys []pubKeyRec
	holders []int32
}

type topicRec struct {
	hash       domain.ID
	live       bool
	keyType    domain.Type
	name       string
	version    uint64
	keyVersion uint64
	created    int64 // Unix ns
	rotated    int64 // Unix ns of the current key
	key        []byte
	members    []int32
}

type tokenRec struct {
	name    string
	role    domain.TokenRole
	live    bool
	hash    [32]byte
	version uint64
	created time.Time
}

// KeyState is the key-state read model plus the delivery queue. It is safe
// for concurrent use: Apply takes the write lock, queries the read lock.
// Keys stay sealed; KeyState never sees a key in clear.
type KeyState struct {
	mu sync.RWMutex

	pos    uint64
	lastID string // id of the record at pos (snapshots name it)

	clients     []clientRec
	clientIdx   map[domain.ID]int32
	liveClients int

	topics     []topicRec
	topicIdx   map[domain.ID]int32
	liveTopics int

	c2 struct {
		version, keyVersion uint64
		public, sealed      []byte
	}

	tokens    []tokenRec
	tokenIdx  map[string]int32
	tokenHash map[[32]byte]int32
	tokenStrm map[string]int32 // token-<hash> stream -> index

	pendingCount int
	// confirmations counts the queued commands settled by
	// command.confirmed (metrics).
	confirmations uint64
	// order lists queued commands in global (Seq) order for the delivery
	// worker; settled ones have ci = -1 until the next compaction.
	order   []orderItem
	settled int
	changed chan struct{}
}

type orderItem struct {
	seq uint64
	ci  int32
}

// NewKeyState returns an empty key state.
func NewKeyState() *KeyState {
	return &KeyState{
		clientIdx: make(map[domain.ID]int32),
		topicIdx:  make(map[domain.ID]int32),
		tokenIdx:  make(map[string]int32),
		tokenHash: make(map[[32]byte]int32),
		tokenStrm: make(map[string]int32),
		changed:   make(chan struct{}, 1),
	}
}

// Seq is the place of a queued command in the global delivery order,
// strictly increasing in log order: the position of its command.queued
// event times 2^20 plus its recipient index (a command has fewer than 2^20
// recipients).
func (q *Queued) Seq() uint64 { return q.Position<<20 | uint64(q.Ref.Index&(1<<20-1)) }

// Changed receives a value (without blocking the projection) after commands
// were queued; the delivery worker polls on it.
func (k *KeyState) Changed() <-chan struct{} { return k.changed }

// Name implements Projection.
func (k *KeyState) Name() string { return "keystate" }

// Position implements Projection: the last applied global position.
func (k *KeyState) Position() uint64 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.pos
}

// Apply implements Projection. Events of other components (unknown wire
// names) are skipped; a malformed event of a known type is an error.
func (k *KeyState) Apply(r eventstore.Record) error {
	t := domain.TypeOf(r.Type)
	var ev domain.Event
	if t != domain.TypeUnknown {
		var err error
		if ev, err = eventcodec.DecodeType(t, r.Data); err != nil {
			return fmt.Errorf("keystate: position %d: %w", r.Position, err)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if ev != nil {
		k.apply(&r, ev)
	}
	k.pos, k.lastID = r.Position, r.ID
	return nil
}

func (k *KeyState) client(id domain.ID) int32 {
	if i, ok := k.clientIdx[id]; ok {
		return i
	}
	i := int32(len(k.clients))
	k.clients = append(k.clients, clientRec{id: id})
	k.clientIdx[id] = i
	return i
}

func (k *KeyState) topic(h domain.ID) int32 {
	if i, ok := k.topicIdx[h]; ok {
		return i
	}
	i := int32(len(k.topics))
	k.topics = append(k.topics, topicRec{hash: h})
	k.topicIdx[h] = i
	return i
}

func (k *KeyState) token(name string) int32 {
	if i, ok := k.tokenIdx[name]; ok {
		return i
	}
	i := int32(len(k.tokens))
	k.tokens = append(k.tokens, tokenRec{name: name})
	k.tokenIdx[name] = i
	k.tokenStrm[domain.TokenStream(name)] = i
	return i
}

func removeIdx(s []int32, v int32) []int32 {
	if i := slices.Index(s, v); i >= 0 {
		return slices.Delete(s, i, i+1)
	}
	return s
}

func (k *KeyState) link(ti, ci int32) {
	t, c := &k.topics[ti], &k.clients[ci]
	if !t.live || !c.live || slices.Contains(c.topics, ti) {
		return
	}
	t.members = append(t.members, ci)
	c.topics = append(c.topics, ti)
	c.acks = append(c.acks, keyAck{})
}

// dropTopic removes topic ti from the client's list (and its acks).
func (c *clientRec) dropTopic(ti int32) {
	if i := slices.Index(c.topics, ti); i >= 0 {
		c.topics = slices.Delete(c.topics, i, i+1)
		c.acks = slices.Delete(c.acks, i, i+1)
	}
}

func (k *KeyState) unlink(ti, ci int32) {
	k.topics[ti].members = removeIdx(k.topics[ti].members, ci)
	k.clients[ci].dropTopic(ti)
}

func (k *KeyState) unlinkAll(ci int32) {
	c := &k.clients[ci]
	for _, ti := range c.topics {
		k.topics[ti].members = removeIdx(k.topics[ti].members, ci)
	}
	c.topics, c.acks = nil, nil
}

func (k *KeyState) dropPending(ci int32) {
	c := &k.clients[ci]
	for i := range c.pending {
		k.unorder(c.pending[i].Seq())
	}
	k.pendingCount -= len(c.pending)
	c.pending = nil
}

// bumpStream records the version of the aggregate that owns stream, for
// events that do not name their aggregate themselves (command.queued).
func (k *KeyState) bumpStream(stream string, version uint64) {
	switch {
	case stream == domain.C2KeyStream:
		k.c2.version = version
	case strings.HasPrefix(stream, domain.ClientStreamPrefix):
		if id, err := domain.ParseID(stream[len(domain.ClientStreamPrefix):]); err == nil {
			k.clients[k.client(id)].version = version
		}
	case strings.HasPrefix(stream, domain.TopicStreamPrefix):
		if id, err := domain.ParseID(stream[len(domain.TopicStreamPrefix):]); err == nil {
			k.topics[k.topic(id)].version = version
		}
	}
}

func (k *KeyState) apply(r *eventstore.Record, ev domain.Event) {
	switch e := ev.(type) {
	case *domain.ClientRegistered:
		ci := k.client(e.Client)
		c := &k.clients[ci]
		if !c.live {
			k.liveClients++
		}
		c.live = true
		if e.Name != "" {
			c.name = e.Name
		}
		c.role = e.Role
		c.version, c.keyVersion, c.keyType = r.Version, r.Version, domain.TypeClientRegistered
		if c.created == 0 {
			c.created = r.Meta.Time.UnixNano()
		}
		c.updated = r.Meta.Time.UnixNano()
		if s := e.Key.Sealed(); s != nil {
			c.key, c.pk = s, false
		} else {
			c.key, c.pk = e.PublicKey, true
		}
		// A (re-)registered device is provisioned with the current C2
		// public key out of band.
		c.c2Version = k.c2.keyVersion
		k.registered(c, r.Version)
		k.retarget(ci)
		k.forgetPubKeyEvidence(ci)
		k.peerRegistered(ci)
	case *domain.ClientRemoved:
		ci := k.client(e.Client)
		c := &k.clients[ci]
		if c.live {
			k.liveClients--
		}
		c.live, c.created = false, 0
		c.version = r.Version
		k.unlinkAll(ci)
		k.dropPending(ci)
		k.dropPubKeys(ci)
	case *domain.ClientKeyRotated:
		c := &k.clients[k.client(e.Client)]
		c.version, c.keyVersion, c.keyType = r.Version, r.Version, domain.TypeClientKeyRotated
		c.updated = r.Meta.Time.UnixNano()
		c.key, c.pk = e.Key.Sealed(), false
	case *domain.ClientTopicsReset:
		ci := k.client(e.Client)
		k.clients[ci].version = r.Version
		k.unlinkAll(ci)
	case *domain.TopicCreated:
		t := &k.topics[k.topic(e.Topic)]
		if !t.live {
			k.liveTopics++
		}
		t.live, t.name = true, e.Name
		t.version, t.keyVersion, t.keyType = r.Version, r.Version, domain.TypeTopicCreated
		t.created, t.rotated = r.Meta.Time.UnixNano(), r.Meta.Time.UnixNano()
		t.key = e.Key.Sealed()
	case *domain.TopicKeyRotated:
		t := &k.topics[k.topic(e.Topic)]
		t.version, t.keyVersion, t.keyType = r.Version, r.Version, domain.TypeTopicKeyRotated
		t.rotated = r.Meta.Time.UnixNano()
		t.key = e.Key.Sealed()
	case *domain.TopicRemoved:
		ti := k.topic(e.Topic)
		t := &k.topics[ti]
		if t.live {
			k.liveTopics--
		}
		for _, ci := range t.members {
			k.clients[ci].dropTopic(ti)
		}
		t.members, t.live, t.version = nil, false, r.Version
	case *domain.TopicClientLinked:
		ti := k.topic(e.Topic)
		k.topics[ti].version = r.Version
		if ci, ok := k.clientIdx[e.Client]; ok {
			k.link(ti, ci)
		}
	case *domain.TopicClientUnlinked:
		ti := k.topic(e.Topic)
		k.topics[ti].version = r.Version
		if ci, ok := k.clientIdx[e.Client]; ok {
			k.unlink(ti, ci)
		}
	case *domain.C2KeyGenerated:
		first := k.c2.keyVersion == 0
		k.c2.version, k.c2.keyVersion = r.Version, r.Version
		k.c2.public, k.c2.sealed = e.Public, e.Private.Sealed()
		if first {
			// Devices registered before the first pair could not have
			// received another one.
			for i := range k.clients {
				k.clients[i].c2Version = r.Version
				k.clients[i].c2 = keyAck{accepted: r.Version, confirmed: r.Version}
			}
		}
	case *domain.CommandQueued:
		k.bumpStream(r.Stream, r.Version)
		k.enqueue(r, e)
	case *domain.CommandDelivered:
		k.settle(r, e.Client, e.Ref, ackAccepted)
	case *domain.CommandConfirmed:
		k.settle(r, e.Client, e.Ref, ackConfirmed)
	case *domain.CommandFailed:
		k.settle(r, e.Client, e.Ref, ackNone)
	case *domain.DeviceSeen:
		k.markSeen(r, e.Client)
	case *domain.DeviceReleased:
		c := &k.clients[k.client(e.Client)]
		c.deliveryVersion = r.Version
		if c.live {
			c.released = true
		}
	case *domain.TokenCreated:
		ti := k.token(e.Name)
		t := &k.tokens[ti]
		if t.live {
			delete(k.tokenHash, t.hash)
		}
		t.live, t.role, t.hash, t.version, t.created = true, e.Role, e.Hash, r.Version, r.Meta.Time
		k.tokenHash[e.Hash] = ti
	case *domain.TokenRevoked:
		t := &k.tokens[k.token(e.Name)]
		if t.live {
			delete(k.tokenHash, t.hash)
		}
		t.live, t.version = false, r.Version
	}
}

func (k *KeyState) push(ci int32, q Queued) {
	c := &k.clients[ci]
	q.Client = c.id
	q.C2KeyVersion = c.c2Version
	if q.Code != core.CmdSetIDKey {
		q.KeyVersion = c.keyVersion
	}
	c.pending = append(c.pending, q)
	k.pendingCount++
	k.wantPubKey(ci, &q)
	k.order = append(k.order, orderItem{seq: q.Seq(), ci: ci})
	select {
	case k.changed <- struct{}{}:
	default:
	}
}

// unorder marks a queued command settled in the global order.
func (k *KeyState) unorder(seq uint64) {
	i, found := slices.BinarySearchFunc(k.order, seq, func(o orderItem, s uint64) int {
		switch {
		case o.seq < s:
			return -1
		case o.seq > s:
			return 1
		}
		return 0
	})
	if !found || k.order[i].ci < 0 {
		return
	}
	k.order[i].ci = -1
	k.settled++
	if k.settled > 1024 && k.settled > len(k.order)/2 {
		k.order = slices.DeleteFunc(k.order, func(o orderItem) bool { return o.ci < 0 })
		k.settled = 0
	}
}

// enqueue applies a command.queued event to the delivery queues (see the
// package documentation for the rules).
func (k *KeyState) enqueue(r *eventstore.Record, e *domain.CommandQueued) {
	base := Queued{
		Ref:               domain.QueueRef{Event: domain.EventRefID(r.ID)},
		Position:          r.Position,
		Time:              r.Meta.Time,
		Code:              e.Code,
		Topic:             e.Topic,
		TopicKeyVersion:   e.TopicKeyVersion,
		Subject:           e.Subject,
		SubjectKeyVersion: e.SubjectKeyVersion,
		NewC2KeyVersion:   e.NewC2KeyVersion,
	}
	if e.Code == core.CmdSetC2Key && r.Stream != domain.C2KeyStream {
		// A resync (client stream): only its recipient, protected with
		// the pair the decision says the device holds. One decided
		// before a C2 rotation the log orders first is dropped: it
		// would take the device back to an older pair.
		if e.NewC2KeyVersion < k.c2.keyVersion {
			return
		}
		for i, rc := range e.Recipients {
			ci, ok := k.clientIdx[rc.Client]
			if !ok || !k.clients[ci].live {
				continue
			}
			q := base
			q.Ref.Index = uint32(i)
			k.push(ci, q)
			c := &k.clients[ci]
			c.pending[len(c.pending)-1].C2KeyVersion = e.C2KeyVersion
			c.c2Version = max(c.c2Version, e.NewC2KeyVersion)
		}
		return
	}
	if e.Code == core.CmdSetC2Key {
		// Every device registered at this point learns the new pair,
		// protected with the pair it knows.
		var idx uint32
		for ci := range k.clients {
			c := &k.clients[ci]
			if !c.live || c.c2Version >= e.NewC2KeyVersion {
				continue
			}
			q := base
			q.Ref.Index = idx
			idx++
			k.push(int32(ci), q)
			c.c2Version = e.NewC2KeyVersion
		}
		return
	}
	var ti int32 = -1
	if e.Code == core.CmdSetTopicKey || e.Code == core.CmdRemoveTopic {
		if i, ok := k.topicIdx[e.Topic]; ok {
			ti = i
		}
	}
	for i, rc := range e.Recipients {
		ci, ok := k.clientIdx[rc.Client]
		if !ok {
			continue
		}
		c := &k.clients[ci]
		switch {
		case e.Code == core.CmdResetTopics:
			// Allowed to a client just removed (remove_client with reset).
		case !c.live:
			continue
		case ti >= 0 && !slices.Contains(c.topics, ti):
			// Unlinked by a concurrent reset or removal: it must not get
			// the key.
			continue
		case e.Code == core.CmdSetTopicKey && ti < 0:
			continue
		case e.Code == core.CmdSetTopicKey && e.TopicKeyVersion < k.topics[ti].keyVersion:
			// A resync decided before a rotation of the topic that the
			// log orders first: the newer key is queued already, and the
			// older one must not overwrite it on the device.
			continue
		}
		q := base
		q.Ref.Index = uint32(i)
		if e.Code == core.CmdSetIDKey {
			q.KeyVersion = rc.KeyVersion
		}
		k.push(ci, q)
	}
}

// retarget adapts the queue of a client whose key was overwritten by
// new_client (a device re-provisioned out of band with that key and the
// current C2 public key): pending commands are protected with the new keys,
// and pending SetIdKey / SetC2Key are dropped, since they would take the
// device away from the keys the C2 now holds for it.
func (k *KeyState) retarget(ci int32) {
	c := &k.clients[ci]
	if len(c.pending) == 0 {
		return
	}
	kept := c.pending[:0]
	for _, q := range c.pending {
		if q.Code == core.CmdSetIDKey || q.Code == core.CmdSetC2Key {
			k.unorder(q.Seq())
			k.pendingCount--
			continue
		}
		q.KeyVersion, q.C2KeyVersion = c.keyVersion, c.c2Version
		kept = append(kept, q)
	}
	clear(c.pending[len(kept):])
	c.pending = kept
	if len(c.pending) == 0 {
		c.pending = nil
	}
}

func (k *KeyState) settle(r *eventstore.Record, id domain.ID, ref domain.QueueRef, grade ackGrade) {
	ci := k.client(id)
	c := &k.clients[ci]
	c.deliveryVersion = r.Version
	for i := range c.pending {
		if c.pending[i].Ref == ref {
			k.acknowledge(c, &c.pending[i], grade)
			if grade != ackNone {
				k.pubKeyEvidence(ci, &c.pending[i], grade)
			}
			k.unorder(c.pending[i].Seq())
			c.pending = slices.Delete(c.pending, i, i+1)
			k.pendingCount--
			if len(c.pending) == 0 {
				c.pending = nil
			}
			return
		}
	}
}
