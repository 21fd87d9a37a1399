package projections

import (
	"encoding/hex"
	"slices"
	"strings"
)

// Snapshot is a canonical, comparable export of a KeyState: two key states
// built from the same events have deeply equal snapshots (reflect.DeepEqual
// or a JSON diff). It holds sealed keys, never clear ones.
type Snapshot struct {
	Position uint64
	Clients  []SnapClient // sorted by id
	Topics   []SnapTopic  // sorted by hash
	C2       SnapC2
	Tokens   []SnapToken // sorted by name
	Pending  int
}

// SnapClient is a client in a Snapshot (removed ones included: their
// stream versions matter to later decisions).
type SnapClient struct {
	ID, Name                                           string
	Live, PK                                           bool
	Role                                               uint8
	Version, KeyVersion, DeliveryVersion, C2KeyVersion uint64
	Key                                                string // hex of the sealed key or public key
	Topics                                             []string
	Pending                                            []Queued
	// Sync state: what the device is known to hold ([accepted,
	// confirmed] versions; TopicAcks parallel to Topics) and when it was
	// first seen since its registration.
	IDKey, C2Key [2]uint64
	TopicAcks    [][2]uint64
	Seen         bool
	SeenAt       int64
}

// SnapTopic is a topic in a Snapshot.
type SnapTopic struct {
	Hash, Name          string
	Live                bool
	Version, KeyVersion uint64
	Key                 string
	Members             []string
}

// SnapC2 is the C2 key pair in a Snapshot.
type SnapC2 struct {
	Version, KeyVersion uint64
	Public, Sealed      string
}

// SnapToken is a token in a Snapshot.
type SnapToken struct {
	Name    string
	Live    bool
	Role    uint8
	Hash    string
	Version uint64
}

// Snapshot exports the state canonically.
func (k *KeyState) Snapshot() Snapshot {
	k.mu.RLock()
	defer k.mu.RUnlock()
	s := Snapshot{Position: k.pos, Pending: k.pendingCount}
	for i := range k.clients {
		c := &k.clients[i]
		sc := SnapClient{ID: c.id.String(), Name: c.name, Live: c.live, PK: c.pk, Role: uint8(c.role),
			Version: c.version, KeyVersion: c.keyVersion, DeliveryVersion: c.deliveryVersion,
			C2KeyVersion: c.c2Version, Key: hex.EncodeToString(c.key), Pending: slices.Clone(c.pending)}
		for i, ti := range c.topics {
			sc.Topics = append(sc.Topics, k.topics[ti].hash.String())
			sc.TopicAcks = append(sc.TopicAcks, [2]uint64{c.acks[i].accepted, c.acks[i].confirmed})
		}
		sc.IDKey = [2]uint64{c.idKey.accepted, c.idKey.confirmed}
		sc.C2Key = [2]uint64{c.c2.accepted, c.c2.confirmed}
		sc.Seen, sc.SeenAt = c.seen, c.seenAt
		s.Clients = append(s.Clients, sc)
	}
	slices.SortFunc(s.Clients, func(a, b SnapClient) int { return strings.Compare(a.ID, b.ID) })
	for i := range k.topics {
		t := &k.topics[i]
		st := SnapTopic{Hash: t.hash.String(), Name: t.name, Live: t.live, Version: t.version,
			KeyVersion: t.keyVersion, Key: hex.EncodeToString(t.key)}
		for _, ci := range t.members {
			st.Members = append(st.Members, k.clients[ci].id.String())
		}
		s.Topics = append(s.Topics, st)
	}
	slices.SortFunc(s.Topics, func(a, b SnapTopic) int { return strings.Compare(a.Hash, b.Hash) })
	s.C2 = SnapC2{Version: k.c2.version, KeyVersion: k.c2.keyVersion,
		Public: hex.EncodeToString(k.c2.public), Sealed: hex.EncodeToString(k.c2.sealed)}
	for i := range k.tokens {
		t := &k.tokens[i]
		s.Tokens = append(s.Tokens, SnapToken{Name: t.name, Live: t.live, Role: uint8(t.role),
			Hash: hex.EncodeToString(t.hash[:]), Version: t.version})
	}
	slices.SortFunc(s.Tokens, func(a, b SnapToken) int { return strings.Compare(a.Name, b.Name) })
	return s
}
