package client

import (
	"crypto/subtle"
	"encoding/hex"
	"maps"
	"time"

	"github.com/e4c2/e4c2/suites/core"
)

// topicEntry is the key material of one topic: the current key and at most
// one previous key with the time it was replaced (whole seconds, as the
// reference stores it).
type topicEntry struct {
	key        []byte
	prev       []byte
	replacedAt time.Time
}

// state is an immutable snapshot of the client state. Commands build a new
// one (copy on write) and swap it in; readers use whatever snapshot they
// loaded, without locks. Byte slices in a published state are never
// modified.
type state struct {
	id      []byte
	key     []byte        // SK identity key
	ident   core.Identity // PK identity (bound to id)
	c2Pub   []byte        // PK
	topics  map[string]topicEntry
	pubKeys map[string][]byte // id -> signing public key (PK)
}

func (s *state) clone() *state {
	n := *s
	n.topics = maps.Clone(s.topics)
	n.pubKeys = maps.Clone(s.pubKeys)
	if n.topics == nil {
		n.topics = map[string]topicEntry{}
	}
	if n.pubKeys == nil {
		n.pubKeys = map[string][]byte{}
	}
	return &n
}

// identityKey returns the identity key as persisted and carried by SetIdKey.
func (s *state) identityKey() []byte {
	if s.ident != nil {
		return s.ident.Bytes()
	}
	return cp(s.key)
}

// TopicKeys is the key material of one topic in a State snapshot.
type TopicKeys struct {
	Key []byte
	// Previous is the key replaced by the last SetTopicKey, nil if none;
	// ReplacedAt is when it was replaced. It is kept (and reported) until
	// the topic is removed or rotated again, even after it expired.
	Previous   []byte
	ReplacedAt time.Time
}

// State is a deep copy of a client's state, for inspection (device CLI,
// tests, monitoring). It contains secret keys: never log it.
type State struct {
	Suite string
	Mode  core.Mode
	ID    []byte
	// Key is the SK symmetric key or the PK private identity as SetIdKey
	// carries it.
	Key []byte
	// C2PublicKey is the C2 public key (PK).
	C2PublicKey []byte
	// Topics maps lower-case hex topic hashes to their keys.
	Topics map[string]TopicKeys
	// PubKeys maps lower-case hex client ids to signing public keys (PK).
	PubKeys map[string][]byte
}

func (c *Client) snapshot(s *state) State {
	out := State{Suite: c.set.suite.Name(), Mode: c.set.mode, ID: cp(s.id), Key: s.identityKey(),
		C2PublicKey: cp(s.c2Pub), Topics: make(map[string]TopicKeys, len(s.topics)),
		PubKeys: make(map[string][]byte, len(s.pubKeys))}
	for h, e := range s.topics {
		out.Topics[hex.EncodeToString([]byte(h))] = TopicKeys{Key: cp(e.key), Previous: cp(e.prev), ReplacedAt: e.replacedAt}
	}
	for id, k := range s.pubKeys {
		out.PubKeys[hex.EncodeToString([]byte(id))] = cp(k)
	}
	return out
}

func cp(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

func allZero(b []byte) bool {
	var acc byte
	for _, x := range b {
		acc |= x
	}
	return acc == 0
}

func equalKeys(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
