package client

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e4c2/e4c2/suites/core"
)

// TestBehaviour runs the device behaviour checks on every suite / mode.
func TestBehaviour(t *testing.T) {
	for _, cb := range combos(t) {
		t.Run(cb.String(), func(t *testing.T) {
			t.Run("TopicCommands", func(t *testing.T) { testTopicCommands(t, cb) })
			t.Run("SetIdKey", func(t *testing.T) { testSetIDKey(t, cb) })
			t.Run("PubKeyCommands", func(t *testing.T) { testPubKeyCommands(t, cb) })
			if cb.mode == core.PubKey { // SK refusal is checked by PubKeyCommands
				t.Run("SetC2Key", func(t *testing.T) { testSetC2Key(t, cb) })
				t.Run("UnknownSignerPolicy", func(t *testing.T) { testUnknownSignerPolicy(t, cb) })
			}
			t.Run("InvalidCommands", func(t *testing.T) { testInvalidCommands(t, cb) })
			t.Run("KeyTransition", func(t *testing.T) { testKeyTransition(t, cb) })
			t.Run("Persistence", func(t *testing.T) { testPersistence(t, cb) })
			t.Run("CorruptState", func(t *testing.T) { testCorruptState(t, cb) })
			t.Run("MissingKeyPolicy", func(t *testing.T) { testMissingKeyPolicy(t, cb) })
			t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, cb) })
		})
	}
}

// selfPeer is the client itself as a message sender; in PK mode its own
// signing key must be in its table to read its own messages.
func (e *env) selfPeer() peer {
	if e.combo.mode == core.SymKey {
		return peer{}
	}
	e.mustSend(core.EncodeSetPubKey(e.c.SigningPublicKey(), e.c.ID()))
	return peer{id: e.c.ID(), ident: e.c.st.Load().ident}
}

func testTopicCommands(t *testing.T, cb combo) {
	e := newEnv(t, cb)
	e.selfPeer()
	ka, kb := e.newKey(), e.newKey()
	e.setTopicKey("topic/a", ka)
	e.setTopicKey("topic/b", kb)
	st := e.c.State()
	ha := hex.EncodeToString(cb.suite.HashTopic("topic/a"))
	if len(st.Topics) != 2 || !bytes.Equal(st.Topics[ha].Key, ka) || st.Topics[ha].Previous != nil {
		t.Fatalf("after SetTopicKey: %d topics", len(st.Topics))
	}
	// Round trip through the client itself.
	p, err := e.c.ProtectMessage([]byte("hello"), "topic/a")
	if err != nil {
		t.Fatal(err)
	}
	wantPayload(t, e.c, p, "topic/a", []byte("hello"))
	_, _, err = e.c.Unprotect(p, "topic/b")
	wantErr(t, err, ErrNotAuthentic, "message of topic/a on topic/b")

	// Same key again: nothing changes, no transition entry.
	e.setTopicKey("topic/a", ka)
	if got := e.c.State().Topics[ha]; got.Previous != nil {
		t.Fatal("same-key SetTopicKey created a transition entry")
	}
	// RemoveTopic removes the topic (and is idempotent).
	e.mustSend(core.EncodeRemoveTopic(cb.suite.HashTopic("topic/a")))
	e.mustSend(core.EncodeRemoveTopic(cb.suite.HashTopic("topic/a")))
	if e.c.HasTopicKey("topic/a") || !e.c.HasTopicKey("topic/b") {
		t.Fatal("RemoveTopic removed the wrong topic")
	}
	_, _, err = e.c.Unprotect(p, "topic/a")
	wantErr(t, err, ErrTopicKeyMissing, "removed topic")
	_, err = e.c.ProtectMessage([]byte("x"), "topic/a")
	wantErr(t, err, ErrTopicKeyMissing, "protect on removed topic")
	// ResetTopics removes all.
	e.mustSend(core.EncodeResetTopics(), nil)
	if n := len(e.c.State().Topics); n != 0 {
		t.Fatalf("ResetTopics left %d topics", n)
	}
	// Topic validation at the boundary.
	_, err = e.c.ProtectMessage([]byte("x"), "a/+")
	wantErr(t, err, ErrInvalidTopic, "wildcard topic")
	_, _, err = e.c.Unprotect(p, "")
	wantErr(t, err, ErrInvalidTopic, "empty topic")
	// SK refuses an empty payload; PK accepts it.
	e.setTopicKey("topic/c", e.newKey())
	_, err = e.c.ProtectMessage(nil, "topic/c")
	if cb.mode == core.SymKey {
		wantErr(t, err, ErrEmptyPayload, "empty SK payload")
	} else {
		wantErr(t, err, nil, "empty PK payload")
	}
}

func testSetIDKey(t *testing.T, cb combo) {
	e := newEnv(t, cb)
	old := e.protectCommand(core.EncodeResetTopics())
	var newKey []byte
	if cb.mode == core.SymKey {
		newKey = e.newKey()
	} else {
		ident, err := e.pk.GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		newKey = ident.Bytes()
		defer func() { e.ident = ident }()
	}
	e.mustSend(core.EncodeSetIDKey(newKey))
	if !bytes.Equal(e.c.State().Key, newKey) {
		t.Fatal("SetIdKey did not replace the identity key")
	}
	// Commands under the old key are now refused.
	_, _, err := e.c.Unprotect(old, e.c.ControlTopic())
	wantErr(t, err, ErrNotAuthentic, "command under the replaced identity")
	// C2 now uses the new key.
	if cb.mode == core.SymKey {
		e.skKey = newKey
	} else {
		ident, err := e.pk.ParseIdentity(newKey)
		if err != nil {
			t.Fatal(err)
		}
		e.ident = ident
		if !bytes.Equal(e.c.PublicKey(), ident.PublicKey()) {
			t.Fatal("PublicKey not updated by SetIdKey")
		}
	}
	e.mustSend(core.EncodeResetTopics(), nil)
	// An invalid identity is refused and changes nothing.
	bad := make([]byte, len(newKey))
	err = e.send(mustEncode(t)(core.EncodeSetIDKey(bad)))
	if cb.mode == core.SymKey {
		wantErr(t, err, ErrInvalidKey, "all-zero SK identity key")
	} else if err != nil && !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("zero PK seed: %v", err) // a zero seed is a valid seed in some suites
	}
	if cb.mode == core.SymKey && !bytes.Equal(e.c.State().Key, newKey) {
		t.Fatal("refused SetIdKey changed the key")
	}
}

func mustEncode(t testing.TB) func([]byte, error) []byte {
	return func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

func testPubKeyCommands(t *testing.T, cb combo) {
	e := newEnv(t, cb)
	enc := mustEncode(t)
	if cb.mode == core.SymKey {
		for _, cmd := range [][]byte{
			enc(core.EncodeSetPubKey(make([]byte, 32), make([]byte, 16))),
			enc(core.EncodeRemovePubKey(make([]byte, 16))),
			core.EncodeResetPubKeys(),
			enc(core.EncodeSetC2Key(make([]byte, 32))),
		} {
			wantErr(t, e.send(cmd), ErrUnsupportedOperation, "PK command in SK mode")
		}
		return
	}
	p1, p2 := newPeer(t, e.pk, "peer-1"), newPeer(t, e.pk, "peer-2")
	e.mustSend(core.EncodeSetPubKey(p1.ident.SigningPublicKey(), p1.id))
	e.mustSend(core.EncodeSetPubKey(p2.ident.SigningPublicKey(), p2.id))
	if n := len(e.c.State().PubKeys); n != 2 {
		t.Fatalf("%d pubkeys, want 2", n)
	}
	k := e.newKey()
	e.setTopicKey("t", k)
	m1 := e.protectFrom(p1, k, []byte("from p1"), t0)
	m := must(e.c.UnprotectMessage(m1, "t"))(t)
	if !bytes.Equal(m.Payload, []byte("from p1")) || !bytes.Equal(m.Sender, p1.id) || !m.Verified {
		t.Fatalf("message from p1: %+v", m)
	}
	// Own messages need the own key in the table.
	own, err := e.c.ProtectMessage([]byte("self"), "t")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = e.c.Unprotect(own, "t")
	wantErr(t, err, ErrPubKeyNotFound, "own message without own pubkey")

	e.mustSend(core.EncodeRemovePubKey(p1.id))
	_, _, err = e.c.Unprotect(m1, "t")
	wantErr(t, err, ErrPubKeyNotFound, "removed signer")
	wantErr(t, e.send(mustEncode(t)(core.EncodeRemovePubKey(p1.id))), ErrPubKeyNotFound, "remove unknown pubkey")
	// p2 signs, but claims to be p1's replacement: wrong key for id.
	forged := e.protectFrom(rebind(t, cb.suite, p1, p2.id), k, []byte("forged"), t0)
	_, _, err = e.c.Unprotect(forged, "t")
	wantErr(t, err, ErrInvalidSignature, "message signed with another key")

	e.mustSend(core.EncodeResetPubKeys(), nil)
	if n := len(e.c.State().PubKeys); n != 0 {
		t.Fatalf("ResetPubKeys left %d", n)
	}
	// An invalid signing key is ignored (reference behaviour), not stored.
	wantErr(t, e.send(enc(core.EncodeSetPubKey(make([]byte, cb.suite.Sizes().SigningPublic), p1.id))), nil, "zero pubkey")
	if n := len(e.c.State().PubKeys); n != 0 {
		t.Fatal("all-zero signing key stored")
	}
}

// rebind returns p's signing identity claiming to be id.
func rebind(t testing.TB, s core.Suite, p peer, id []byte) peer {
	t.Helper()
	b, err := bindIdentity(s, p.ident, id)
	if err != nil {
		t.Fatal(err)
	}
	return peer{id: id, ident: b}
}

func must(m Message, err error) func(testing.TB) Message {
	return func(t testing.TB) Message {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
}

func testSetC2Key(t *testing.T, cb combo) {
	e := newEnv(t, cb)
	c2b, err := e.pk.GenerateC2Key()
	if err != nil {
		t.Fatal(err)
	}
	oldProtected := e.protectCommand(core.EncodeResetTopics())
	// SetC2Key is protected with the OLD C2 key.
	e.mustSend(core.EncodeSetC2Key(c2b.PublicKey()))
	if !bytes.Equal(e.c.State().C2PublicKey, c2b.PublicKey()) {
		t.Fatal("c2 key not replaced")
	}
	_, _, err = e.c.Unprotect(oldProtected, e.c.ControlTopic())
	if err == nil {
		t.Fatal("command under the old C2 key accepted")
	}
	e.c2 = c2b
	e.mustSend(core.EncodeResetTopics(), nil)
	// A C2 key the suite rejects is refused with ErrInvalidKey.
	zero := make([]byte, cb.suite.Sizes().C2PublicKey)
	if e.pk.CheckC2PublicKey(zero) != nil {
		err = e.send(mustEncode(t)(core.EncodeSetC2Key(zero)))
		wantErr(t, err, ErrInvalidKey, "all-zero c2 key")
		if !bytes.Equal(e.c.State().C2PublicKey, c2b.PublicKey()) {
			t.Fatal("refused SetC2Key changed the key")
		}
	}
}

func testInvalidCommands(t *testing.T, cb combo) {
	e := newEnv(t, cb)
	before := e.c.State()
	for _, cmd := range [][]byte{{0x08}, {0xff}, {0x01, 0x00}, append([]byte{0x00}, make([]byte, 15)...)} {
		wantErr(t, e.send(cmd), ErrInvalidCommand, "malformed command")
	}
	_, isCmd, err := e.c.Unprotect([]byte("garbage"), e.c.ControlTopic())
	if err == nil || !isCmd {
		t.Fatalf("garbage command: %v %v", isCmd, err)
	}
	if cb.mode == core.SymKey {
		if err := e.send(nil); err == nil {
			t.Fatal("empty command accepted")
		}
	} else if p, err := e.pk.ProtectCommand(e.c2, e.ident.PublicKey(), nil, t0); err == nil {
		if _, _, err := e.c.Unprotect(p, e.c.ControlTopic()); err == nil {
			t.Fatal("empty command accepted")
		}
	}
	if !statesEqual(before, e.c.State()) {
		t.Fatal("refused commands changed the state")
	}
	// A stale command is refused by the window.
	p := e.protectCommand(core.EncodeResetTopics())
	e.clock.Add(11 * time.Minute)
	_, _, err = e.c.Unprotect(p, e.c.ControlTopic())
	wantErr(t, err, ErrTimestampTooOld, "stale command")
}

func statesEqual(a, b State) bool {
	if a.Suite != b.Suite || a.Mode != b.Mode || !bytes.Equal(a.ID, b.ID) || !bytes.Equal(a.Key, b.Key) ||
		!bytes.Equal(a.C2PublicKey, b.C2PublicKey) || len(a.Topics) != len(b.Topics) || len(a.PubKeys) != len(b.PubKeys) {
		return false
	}
	for h, x := range a.Topics {
		y, ok := b.Topics[h]
		if !ok || !bytes.Equal(x.Key, y.Key) || !bytes.Equal(x.Previous, y.Previous) || !x.ReplacedAt.Equal(y.ReplacedAt) {
			return false
		}
	}
	for id, k := range a.PubKeys {
		if !bytes.Equal(k, b.PubKeys[id]) {
			return false
		}
	}
	return true
}

func testKeyTransition(t *testing.T, cb combo) {
	e := newEnv(t, cb)
	var sender peer
	if cb.mode == core.PubKey {
		sender = newPeer(t, e.pk, "sender")
		e.mustSend(core.EncodeSetPubKey(sender.ident.SigningPublicKey(), sender.id))
	}
	const topic = "sensors/temp"
	a, b, other := e.newKey(), e.newKey(), e.newKey()
	e.setTopicKey(topic, a)
	e.clock.Add(100 * time.Second)
	t1 := e.clock.Now()
	e.setTopicKey(topic, b)
	tk := e.c.State().Topics[hex.EncodeToString(cb.suite.HashTopic(topic))]
	if !bytes.Equal(tk.Key, b) || !bytes.Equal(tk.Previous, a) || !tk.ReplacedAt.Equal(t1) {
		t.Fatal("transition entry not recorded")
	}
	msg := func(key []byte) []byte { return e.protectFrom(sender, key, []byte("m"), e.clock.Now()) }

	e.clock.Set(t1.Add(10 * time.Second))
	wantPayload(t, e.c, msg(b), topic, []byte("m"))
	wantPayload(t, e.c, msg(a), topic, []byte("m"))
	e.clock.Set(t1.Add(DefaultTransition)) // boundary inclusive
	wantPayload(t, e.c, msg(a), topic, []byte("m"))
	_, _, err := e.c.Unprotect(msg(other), topic)
	wantErr(t, err, ErrNotAuthentic, "unrelated key during transition")

	e.clock.Set(t1.Add(DefaultTransition + time.Second))
	_, _, err = e.c.Unprotect(msg(a), topic)
	wantErr(t, err, ErrTimestampTooOld, "expired previous key")
	// Deliberate difference 3: a forgery is NotAuthentic even after expiry.
	_, _, err = e.c.Unprotect(msg(other), topic)
	wantErr(t, err, ErrNotAuthentic, "unrelated key after expiry")
	wantPayload(t, e.c, msg(b), topic, []byte("m"))

	// The message's own window still applies to the previous key.
	e.clock.Set(t1.Add(time.Minute))
	old := msg(a)
	e.clock.Add(11 * time.Minute)
	_, _, err = e.c.Unprotect(old, topic)
	wantErr(t, err, ErrTimestampTooOld, "old message under previous key")

	// A second rotation keeps only one previous key.
	c := e.newKey()
	e.setTopicKey(topic, c)
	if tk := e.c.State().Topics[hex.EncodeToString(cb.suite.HashTopic(topic))]; !bytes.Equal(tk.Previous, b) {
		t.Fatal("second rotation did not keep exactly the last key")
	}
	_, _, err = e.c.Unprotect(msg(a), topic)
	wantErr(t, err, ErrNotAuthentic, "key two rotations back")

	// A configurable transition period.
	e2 := newEnv(t, cb, func(c *Config) { c.Transition = time.Minute })
	if cb.mode == core.PubKey {
		e2.mustSend(core.EncodeSetPubKey(sender.ident.SigningPublicKey(), sender.id))
	}
	e2.setTopicKey(topic, a)
	e2.setTopicKey(topic, b)
	e2.clock.Add(61 * time.Second)
	_, _, err = e2.c.Unprotect(e2.protectFrom(sender, a, []byte("m"), e2.clock.Now()), topic)
	wantErr(t, err, ErrTimestampTooOld, "custom transition period")

	// RemoveTopic removes both keys.
	e.mustSend(core.EncodeRemoveTopic(cb.suite.HashTopic(topic)))
	if len(e.c.State().Topics) != 0 {
		t.Fatal("RemoveTopic left a key")
	}
}

func testPersistence(t *testing.T, cb combo) {
	dir := t.TempDir()
	path := filepath.Join(dir, "device.state")
	e := newEnv(t, cb, func(c *Config) { c.StatePath = path })
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v", fi.Mode().Perm())
	}
	ka, kb, kc := e.newKey(), e.newKey(), e.newKey()
	e.setTopicKey("topic/a", ka)
	e.setTopicKey("topic/a", kb)
	e.setTopicKey("topic/c", kc)
	if cb.mode == core.PubKey {
		p := newPeer(t, e.pk, "peer")
		e.mustSend(core.EncodeSetPubKey(p.ident.SigningPublicKey(), p.id))
	}
	opts := []Option{WithSuite(cb.suite), WithClock(e.clock.Now)}
	re, err := Load(path, opts...)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !statesEqual(e.c.State(), re.State()) {
		t.Fatal("reloaded state differs")
	}
	if re.ControlTopic() != e.c.ControlTopic() {
		t.Fatal("control topic differs after reload")
	}
	// The reloaded client works: it reads what the original protects.
	p, err := e.c.ProtectMessage([]byte("persist"), "topic/c")
	if err != nil {
		t.Fatal(err)
	}
	if cb.mode == core.SymKey {
		wantPayload(t, re, p, "topic/c", []byte("persist"))
	}
	// A removed key is gone from the file.
	e.mustSend(core.EncodeRemoveTopic(cb.suite.HashTopic("topic/c")))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range []string{base64.StdEncoding.EncodeToString(kc), hex.EncodeToString(kc)} {
		if strings.Contains(string(data), enc) {
			t.Fatal("removed topic key still in the state file")
		}
	}
	if !strings.Contains(string(data), base64.StdEncoding.EncodeToString(kb)) {
		t.Fatal("current key missing from the state file (the check above proves nothing)")
	}
	// No temporary files left behind.
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("%d files in the state directory", len(ents))
	}
	// New refuses to overwrite an existing state.
	cfg := Config{Suite: cb.suite, Mode: cb.mode, Name: "other", Key: e.c.State().Key, StatePath: path,
		C2PublicKey: e.c.State().C2PublicKey}
	if _, err := New(cfg); !errors.Is(err, os.ErrExist) {
		t.Fatalf("New over an existing state: %v", err)
	}
	// Load reads the suite from the file; a suite given must be that one.
	if re, err := Load(path); err != nil || re.Suite().Name() != cb.suite.Name() || !bytes.Equal(re.ID(), e.c.ID()) {
		t.Fatalf("Load without suite: %v", err)
	}
	for _, s := range testSuites() {
		if s.Name() != cb.suite.Name() {
			if _, err := Load(path, WithSuite(s)); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Load with suite %s: %v", s.Name(), err)
			}
		}
	}
	if err := re.Save(); err != nil {
		t.Fatal(err)
	}
}

func testCorruptState(t *testing.T, cb combo) {
	dir := t.TempDir()
	path := filepath.Join(dir, "device.state")
	e := newEnv(t, cb, func(c *Config) { c.StatePath = path })
	e.setTopicKey("topic/a", e.newKey())
	e.setTopicKey("topic/a", e.newKey())
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.state")
	try := func(what string, data []byte) {
		t.Helper()
		if err := os.WriteFile(bad, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(bad, WithSuite(cb.suite))
		if !errors.Is(err, ErrStateCorrupt) || c != nil {
			t.Fatalf("%s: Load = %v, %v; want ErrStateCorrupt", what, c, err)
		}
	}
	for n := 0; n < len(good)-1; n += 1 + len(good)/97 {
		try("truncated", good[:n])
	}
	try("trailing garbage", append(append([]byte{}, good...), "{}"...))
	try("version 2", []byte(strings.Replace(string(good), `"version": 1`, `"version": 2`, 1)))
	try("unknown field", []byte(strings.Replace(string(good), `"version": 1`, `"version": 1, "x": 1`, 1)))
	try("bad id", []byte(strings.Replace(string(good), `"id": "`, `"id": "zz`, 1)))
	try("not json", []byte("\x00\x01"))
	// Flip every byte of a key to a different base64 length.
	try("short key", []byte(strings.Replace(string(good), `"key": "`, `"key": "AAAA`, 1)))
}

func testMissingKeyPolicy(t *testing.T, cb combo) {
	strict := newEnv(t, cb)
	_, err := strict.c.ProtectMessage([]byte("x"), "no/key")
	wantErr(t, err, ErrTopicKeyMissing, "strict protect")
	_, _, err = strict.c.Unprotect([]byte("x"), "no/key")
	wantErr(t, err, ErrTopicKeyMissing, "strict unprotect")

	e := newEnv(t, cb, func(c *Config) { c.MissingKey = PassthroughMissingKey })
	out, err := e.c.ProtectMessage([]byte("clear"), "no/key")
	if err != nil || string(out) != "clear" {
		t.Fatalf("passthrough protect: %q %v", out, err)
	}
	m := must(e.c.UnprotectMessage([]byte("clear"), "no/key"))(t)
	if string(m.Payload) != "clear" || m.Verified {
		t.Fatalf("passthrough unprotect: %+v", m)
	}
	// A topic with a key never falls back to clear text.
	e.setTopicKey("keyed", e.newKey())
	_, _, err = e.c.Unprotect([]byte("clear text on a keyed topic"), "keyed")
	if err == nil {
		t.Fatal("clear text accepted on a keyed topic")
	}
	// Nor does the control topic.
	_, _, err = e.c.Unprotect([]byte("clear"), e.c.ControlTopic())
	if err == nil {
		t.Fatal("clear command accepted")
	}
	if _, err := New(Config{Suite: cb.suite, Mode: cb.mode, Name: "x", Key: []byte("k"), MissingKey: 7}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("unknown policy: %v", err)
	}
}

func testUnknownSignerPolicy(t *testing.T, cb combo) {
	stranger := newPeer(t, cb.suite.(core.PKSuite), "stranger")
	known := newPeer(t, cb.suite.(core.PKSuite), "known")

	strict := newEnv(t, cb)
	k := strict.newKey()
	strict.setTopicKey("t", k)
	_, _, err := strict.c.Unprotect(strict.protectFrom(stranger, k, []byte("hi"), t0), "t")
	wantErr(t, err, ErrPubKeyNotFound, "unknown signer, strict")

	var e *env
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatal(r)
			}
		}()
		cfg := func(c *Config) { c.UnknownSigner = AcceptUnknownSignerUnverified }
		s := cb.suite.(core.PKSuite)
		ident, _ := s.GenerateIdentity()
		c2, _ := s.GenerateC2Key()
		_, err := New(Config{Suite: cb.suite, Mode: cb.mode, Name: "probe", Key: ident.Bytes(),
			C2PublicKey: c2.PublicKey(), UnknownSigner: AcceptUnknownSignerUnverified})
		if err != nil {
			if !errors.Is(err, ErrUnsupportedOperation) {
				t.Fatalf("policy refused with %v", err)
			}
			return // the suite binds more than ts into its AEAD: refused, as documented
		}
		e = newEnv(t, cb, cfg)
	}()
	if e == nil {
		t.Logf("suite %s: AcceptUnknownSignerUnverified unsupported (refused by New)", cb.suite.Name())
		return
	}
	e.setTopicKey("t", k)
	e.mustSend(core.EncodeSetPubKey(known.ident.SigningPublicKey(), known.id))
	m := must(e.c.UnprotectMessage(e.protectFrom(stranger, k, []byte("hi"), t0), "t"))(t)
	if string(m.Payload) != "hi" || m.Verified || !bytes.Equal(m.Sender, stranger.id) {
		t.Fatalf("unverified message: %+v", m)
	}
	// A known sender is always verified: the stranger cannot borrow its id.
	forged := e.protectFrom(rebind(t, cb.suite, stranger, known.id), k, []byte("forged"), t0)
	_, _, err = e.c.Unprotect(forged, "t")
	wantErr(t, err, ErrInvalidSignature, "forged known sender under permissive policy")
	// The topic key still authenticates unverified messages.
	_, _, err = e.c.Unprotect(e.protectFrom(stranger, e.newKey(), []byte("hi"), t0), "t")
	wantErr(t, err, ErrNotAuthentic, "unknown signer, wrong topic key")
	m = must(e.c.UnprotectMessage(e.protectFrom(known, k, []byte("ok"), t0), "t"))(t)
	if !m.Verified {
		t.Fatal("known sender not marked verified")
	}
}

func testConcurrency(t *testing.T, cb combo) {
	e := newEnv(t, cb)
	self := e.selfPeer()
	keys := [][]byte{e.newKey(), e.newKey(), e.newKey()}
	e.setTopicKey("t", keys[0])
	msgs := make([][]byte, len(keys))
	for i, k := range keys {
		msgs[i] = e.protectFrom(self, k, []byte("payload"), t0)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, m := range msgs {
					p, _, err := e.c.Unprotect(m, "t")
					if err == nil && string(p) != "payload" {
						t.Error("wrong payload under concurrency")
					}
				}
				if _, err := e.c.ProtectMessage([]byte("x"), "t"); err != nil && !errors.Is(err, ErrTopicKeyMissing) {
					t.Error(err)
				}
				_ = e.c.State()
			}
		}()
	}
	for i := range 6 {
		e.setTopicKey("t", keys[i%len(keys)])
	}
	e.mustSend(core.EncodeRemoveTopic(cb.suite.HashTopic("t")))
	close(stop)
	wg.Wait()
}
