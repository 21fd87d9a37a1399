package client

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/e4c2/e4c2/suites/core"
)

// e4goState is the JSON state file of the reference library (e4go v1.1),
// as its FileStore writes it.
type e4goState struct {
	ID             []byte            `json:"ID"`
	TopicKeys      map[string][]byte `json:"TopicKeys"`
	Key            *e4goKey          `json:"Key"`
	ReceivingTopic string            `json:"ReceivingTopic"`
}

type e4goKey struct {
	KeyType *int            `json:"keyType"`
	KeyData json.RawMessage `json:"keyData"`
}

// e4go key material types.
const (
	e4goSymKey = 0
	e4goPubKey = 1
)

type e4goSymData struct {
	Key []byte `json:"Key"`
}

type e4goPubData struct {
	PrivateKey []byte            `json:"PrivateKey"`
	SignerID   []byte            `json:"SignerID"`
	C2PubKey   []byte            `json:"C2PubKey"`
	PubKeys    map[string][]byte `json:"PubKeys"`
}

// ImportE4GoState builds a client from the state file of the reference e4go
// library, so that a provisioned device can move to this library without
// re-keying. suite must read the reference's key formats (the standard
// suite); the mode comes from the file. opts set the runtime settings and,
// with WithStatePath, where the imported state is saved in this package's
// format.
//
// Differences from the reference, on purpose: the id must be 16 bytes (the
// reference accepts any length in SK mode, but no C2 could address such a
// device); the file's ReceivingTopic is not used (the control topic is
// always "e4/<hex id>"); a transition slot (a 40-byte key||LE64(time)
// entry stored under SHA3-256(topichash)[:16]) whose topic has no current
// key is dropped, as it could never be used.
func ImportE4GoState(data []byte, suite core.Suite, opts ...Option) (*Client, error) {
	cfg := Config{Suite: suite}
	for _, o := range opts {
		o(&cfg)
	}
	cfg.Suite = suite
	if suite == nil {
		return nil, configErr("no suite")
	}
	var f e4goState
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: e4go state: %w", ErrStateCorrupt, err)
	}
	// Bytes after the first JSON value are ignored, as the reference's own
	// loader ignores them: it rewrites its state file from the start
	// without truncating it, so after any command that shrinks the state
	// (RemoveTopic, ResetTopics, RemovePubKey, ResetPubKeys) the tail of
	// the older, longer state follows the JSON in every real file.
	if f.Key == nil || f.Key.KeyType == nil || f.ID == nil {
		return nil, fmt.Errorf("%w: e4go state: missing ID or Key", ErrStateCorrupt)
	}
	if err := core.ValidateID(f.ID); err != nil {
		return nil, fmt.Errorf("%w: e4go state: %w", ErrStateCorrupt, err)
	}
	var key, c2Pub []byte
	var pubKeys map[string][]byte
	switch *f.Key.KeyType {
	case e4goSymKey:
		cfg.Mode = core.SymKey
		var d e4goSymData
		if err := strictJSON(f.Key.KeyData, &d); err != nil {
			return nil, fmt.Errorf("%w: e4go state: symmetric key data: %w", ErrStateCorrupt, err)
		}
		key = d.Key
	case e4goPubKey:
		cfg.Mode = core.PubKey
		var d e4goPubData
		if err := strictJSON(f.Key.KeyData, &d); err != nil {
			return nil, fmt.Errorf("%w: e4go state: public key data: %w", ErrStateCorrupt, err)
		}
		if !bytes.Equal(d.SignerID, f.ID) {
			return nil, fmt.Errorf("%w: e4go state: SignerID differs from ID (unsupported)", ErrStateCorrupt)
		}
		key, c2Pub, pubKeys = d.PrivateKey, d.C2PubKey, d.PubKeys
	default:
		return nil, fmt.Errorf("%w: e4go state: unknown key type %d", ErrStateCorrupt, *f.Key.KeyType)
	}
	set, err := resolve(&cfg)
	if err != nil {
		return nil, err
	}
	st := &state{id: cp(f.ID), topics: map[string]topicEntry{}, pubKeys: map[string][]byte{}}
	if err := setIdentity(set, st, key, c2Pub); err != nil {
		return nil, fmt.Errorf("%w: e4go state: %w", ErrStateCorrupt, err)
	}
	if err := importTopics(set, st, f.TopicKeys); err != nil {
		return nil, fmt.Errorf("%w: e4go state: %w", ErrStateCorrupt, err)
	}
	for h, k := range pubKeys {
		id, err := hex.DecodeString(h)
		if err != nil || len(id) != core.IDLen {
			return nil, fmt.Errorf("%w: e4go state: pubkey id is not 16 hex-encoded bytes", ErrStateCorrupt)
		}
		if len(k) != set.sizes.SigningPublic {
			return nil, fmt.Errorf("%w: e4go state: pubkey %s is %d bytes", ErrStateCorrupt, h, len(k))
		}
		st.pubKeys[string(id)] = cp(k)
	}
	return newPersistedClient(set, st)
}

// importTopics splits the reference's single table into current keys
// (Sizes().Key bytes under the topic hash) and transition slots
// (key || LE64(replacement time) under HashID(topic hash)).
func importTopics(set *settings, st *state, table map[string][]byte) error {
	slots := map[string][]byte{}
	klen := set.sizes.Key
	for h, v := range table {
		hb, err := hex.DecodeString(h)
		if err != nil || len(hb) != core.IDLen {
			return errors.New("topic hash is not 16 hex-encoded bytes")
		}
		switch len(v) {
		case klen:
			st.topics[string(hb)] = topicEntry{key: cp(v)}
		case klen + 8:
			slots[string(hb)] = v
		default:
			return fmt.Errorf("topic %s: key entry is %d bytes", h, len(v))
		}
	}
	for h, e := range st.topics {
		slot, ok := slots[string(core.HashID([]byte(h)))]
		if !ok {
			continue
		}
		ts := binary.LittleEndian.Uint64(slot[klen:])
		if ts == 0 || ts > 1<<62 {
			return errors.New("transition slot has an invalid time")
		}
		e.prev, e.replacedAt = cp(slot[:klen]), time.Unix(int64(ts), 0)
		st.topics[h] = e
	}
	return nil
}

func strictJSON(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return errors.New("missing")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data")
	}
	return nil
}
