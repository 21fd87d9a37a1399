package projections

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"slices"
	"time"

	"github.com/e4c2/e4c2/domain"
)

// State images: the whole KeyState (key records with their sealed keys,
// delivery queues, sync evidence, tokens), in a form that can be written to
// disk and read back, so that a start can resume from a snapshot instead of
// replaying the whole log. Everything derivable (the lookup maps, the
// global delivery order, the live counters) is rebuilt on load rather than
// stored, so the image holds each fact once and two key states built from
// the same events encode to the same bytes (the encoding is canonical for
// the state: see EncodeState).

// stateImageVersion is the layout of the image; a reader refuses others.
const stateImageVersion = 2

type stateImage struct {
	Version       int
	Pos           uint64
	LastID        string
	Clients       []clientImage
	Topics        []topicImage
	C2Version     uint64
	C2KeyVersion  uint64
	C2Public      []byte
	C2Sealed      []byte
	Tokens        []tokenImage
	Confirmations uint64
}

type clientImage struct {
	ID                                              domain.ID
	Live, PK                                        bool
	Role                                            domain.Role
	KeyType                                         domain.Type
	Name                                            string
	Version, KeyVersion, DeliveryVersion, C2Version uint64
	Created, Updated                                int64
	Key                                             []byte // sealed SK key or PK public key
	Topics                                          []int32
	Acks                                            [][2]uint64
	Pending                                         []Queued
	IDKey, C2                                       [2]uint64
	Seen                                            bool
	SeenAt                                          int64
	Released                                        bool
	PubKeys                                         []pubKeyImage
}

type pubKeyImage struct {
	Peer                         int32 // client index
	Desired, Accepted, Confirmed uint64
}

type topicImage struct {
	Hash                domain.ID
	Live                bool
	KeyType             domain.Type
	Name                string
	Version, KeyVersion uint64
	Created, Rotated    int64
	Key                 []byte // sealed
	Members             []int32
}

type tokenImage struct {
	Name    string
	Role    domain.TokenRole
	Live    bool
	Hash    [32]byte
	Version uint64
	Created time.Time
}

// LastEventID returns the id of the last applied record: a snapshot names
// it so that a start can check the snapshot belongs to this log.
func (k *KeyState) LastEventID() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.lastID
}

// image copies the state under the read lock; encoding happens outside it
// so that Apply waits only for the copy.
func (k *KeyState) image() *stateImage {
	k.mu.RLock()
	defer k.mu.RUnlock()
	im := &stateImage{Version: stateImageVersion, Pos: k.pos, LastID: k.lastID,
		C2Version: k.c2.version, C2KeyVersion: k.c2.keyVersion,
		C2Public: slices.Clone(k.c2.public), C2Sealed: slices.Clone(k.c2.sealed),
		Confirmations: k.confirmations}
	im.Clients = make([]clientImage, len(k.clients))
	for i := range k.clients {
		c := &k.clients[i]
		ci := clientImage{ID: c.id, Live: c.live, PK: c.pk, Role: c.role, KeyType: c.keyType, Name: c.name,
			Version: c.version, KeyVersion: c.keyVersion, DeliveryVersion: c.deliveryVersion, C2Version: c.c2Version,
			Created: c.created, Updated: c.updated, Key: slices.Clone(c.key), Topics: slices.Clone(c.topics),
			Pending: slices.Clone(c.pending), IDKey: [2]uint64{c.idKey.accepted, c.idKey.confirmed},
			C2: [2]uint64{c.c2.accepted, c.c2.confirmed}, Seen: c.seen, SeenAt: c.seenAt, Released: c.released}
		for _, p := range c.pubkeys {
			ci.PubKeys = append(ci.PubKeys, pubKeyImage{Peer: p.peer, Desired: p.desired, Accepted: p.accepted, Confirmed: p.confirmed})
		}
		if len(c.acks) > 0 {
			ci.Acks = make([][2]uint64, len(c.acks))
			for j, a := range c.acks {
				ci.Acks[j] = [2]uint64{a.accepted, a.confirmed}
			}
		}
		im.Clients[i] = ci
	}
	im.Topics = make([]topicImage, len(k.topics))
	for i := range k.topics {
		t := &k.topics[i]
		im.Topics[i] = topicImage{Hash: t.hash, Live: t.live, KeyType: t.keyType, Name: t.name, Version: t.version,
			KeyVersion: t.keyVersion, Created: t.created, Rotated: t.rotated, Key: slices.Clone(t.key),
			Members: slices.Clone(t.members)}
	}
	im.Tokens = make([]tokenImage, len(k.tokens))
	for i := range k.tokens {
		t := &k.tokens[i]
		im.Tokens[i] = tokenImage{Name: t.name, Role: t.role, Live: t.live, Hash: t.hash, Version: t.version, Created: t.created}
	}
	return im
}

// EncodeState returns the state's image and the position it stands for.
// The encoding (encoding/gob of a struct without maps, with the records in
// the order the log created them) is deterministic: equal states give
// equal bytes, which is what a snapshot's hash and the replay tests rely
// on. Keys are in it sealed, as the key state holds them; never in clear.
func (k *KeyState) EncodeState() ([]byte, uint64, error) {
	b, pos, _, err := k.encode()
	return b, pos, err
}

func (k *KeyState) encode() (b []byte, pos uint64, lastID string, err error) {
	im := k.image()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(im); err != nil {
		return nil, 0, "", fmt.Errorf("keystate: encode state: %w", err)
	}
	return buf.Bytes(), im.Pos, im.LastID, nil
}

// DecodeKeyState rebuilds a key state from EncodeState's bytes, checking
// that the image is coherent (indexes in range, links symmetric) so that a
// damaged image is refused rather than half-trusted.
func DecodeKeyState(b []byte) (*KeyState, error) {
	var im stateImage
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&im); err != nil {
		return nil, fmt.Errorf("keystate: decode state: %w", err)
	}
	if im.Version != stateImageVersion {
		return nil, fmt.Errorf("keystate: state image version %d, want %d", im.Version, stateImageVersion)
	}
	k := NewKeyState()
	k.pos, k.lastID, k.confirmations = im.Pos, im.LastID, im.Confirmations
	k.c2.version, k.c2.keyVersion, k.c2.public, k.c2.sealed = im.C2Version, im.C2KeyVersion, im.C2Public, im.C2Sealed
	k.topics = make([]topicRec, len(im.Topics))
	for i, t := range im.Topics {
		if _, dup := k.topicIdx[t.Hash]; dup {
			return nil, fmt.Errorf("keystate: state image: topic %d repeated", i)
		}
		k.topics[i] = topicRec{hash: t.Hash, live: t.Live, keyType: t.KeyType, name: t.Name, version: t.Version,
			keyVersion: t.KeyVersion, created: t.Created, rotated: t.Rotated, key: t.Key, members: t.Members}
		k.topicIdx[t.Hash] = int32(i)
		if t.Live {
			k.liveTopics++
		}
	}
	k.clients = make([]clientRec, len(im.Clients))
	for i, c := range im.Clients {
		if _, dup := k.clientIdx[c.ID]; dup {
			return nil, fmt.Errorf("keystate: state image: client %d repeated", i)
		}
		if len(c.Acks) != len(c.Topics) {
			return nil, fmt.Errorf("keystate: state image: client %d: %d acks for %d topics", i, len(c.Acks), len(c.Topics))
		}
		cr := clientRec{id: c.ID, live: c.Live, pk: c.PK, role: c.Role, keyType: c.KeyType, name: c.Name,
			version: c.Version, keyVersion: c.KeyVersion, deliveryVersion: c.DeliveryVersion, c2Version: c.C2Version,
			created: c.Created, updated: c.Updated, key: c.Key, topics: c.Topics, pending: c.Pending,
			idKey: keyAck{c.IDKey[0], c.IDKey[1]}, c2: keyAck{c.C2[0], c.C2[1]}, seen: c.Seen, seenAt: c.SeenAt, released: c.Released}
		if len(c.Acks) > 0 {
			cr.acks = make([]keyAck, len(c.Acks))
			for j, a := range c.Acks {
				cr.acks[j] = keyAck{a[0], a[1]}
			}
		}
		for _, ti := range c.Topics {
			if ti < 0 || int(ti) >= len(k.topics) || !slices.Contains(k.topics[ti].members, int32(i)) {
				return nil, fmt.Errorf("keystate: state image: client %d: bad topic link %d", i, ti)
			}
		}
		k.clients[i] = cr
		k.clientIdx[c.ID] = int32(i)
		if c.Live {
			k.liveClients++
		}
		for _, q := range c.Pending {
			k.order = append(k.order, orderItem{seq: q.Seq(), ci: int32(i)})
		}
		k.pendingCount += len(c.Pending)
	}
	// Public key records name peers by index: check them and rebuild the
	// holder links once every client is in place.
	for i, c := range im.Clients {
		for _, p := range c.PubKeys {
			if p.Peer < 0 || int(p.Peer) >= len(k.clients) || slices.ContainsFunc(k.clients[i].pubkeys, func(q pubKeyRec) bool { return q.peer == p.Peer }) {
				return nil, fmt.Errorf("keystate: state image: client %d: bad public key peer %d", i, p.Peer)
			}
			k.clients[i].pubkeys = append(k.clients[i].pubkeys, pubKeyRec{peer: p.Peer, desired: p.Desired, accepted: p.Accepted, confirmed: p.Confirmed})
			k.clients[p.Peer].holders = append(k.clients[p.Peer].holders, int32(i))
		}
	}
	for i := range k.topics {
		for _, ci := range k.topics[i].members {
			if ci < 0 || int(ci) >= len(k.clients) || !slices.Contains(k.clients[ci].topics, int32(i)) {
				return nil, fmt.Errorf("keystate: state image: topic %d: bad member %d", i, ci)
			}
		}
	}
	// The delivery worker takes commands in global order.
	slices.SortFunc(k.order, func(a, b orderItem) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	k.tokens = make([]tokenRec, len(im.Tokens))
	for i, t := range im.Tokens {
		if _, dup := k.tokenIdx[t.Name]; dup {
			return nil, fmt.Errorf("keystate: state image: token %d repeated", i)
		}
		k.tokens[i] = tokenRec{name: t.Name, role: t.Role, live: t.Live, hash: t.Hash, version: t.Version, created: t.Created}
		k.tokenIdx[t.Name] = int32(i)
		k.tokenStrm[domain.TokenStream(t.Name)] = int32(i)
		if t.Live {
			k.tokenHash[t.Hash] = int32(i)
		}
	}
	if k.pendingCount > 0 {
		k.changed <- struct{}{}
	}
	return k, nil
}

// TopicNames returns the name of every topic the log created (removed
// ones included): an audit trail resumed from a snapshot needs them to
// name the topics of its entries.
func (k *KeyState) TopicNames() map[domain.ID]string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	m := make(map[domain.ID]string, len(k.topics))
	for i := range k.topics {
		if k.topics[i].name != "" {
			m[k.topics[i].hash] = k.topics[i].name
		}
	}
	return m
}
