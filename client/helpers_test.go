package client

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/e4c2/e4c2/suites/core"
)

// fakeClock is an injectable clock, safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{now: t} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Set(t time.Time) {
	f.mu.Lock()
	f.now = t
	f.mu.Unlock()
}

func (f *fakeClock) Add(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// combo is one suite / mode combination the behaviour tests run on.
type combo struct {
	suite core.Suite
	mode  core.Mode
}

func (c combo) String() string { return c.suite.Name() + "/" + c.mode.String() }

// combos lists every suite / mode combination of testSuites().
func combos(t testing.TB) []combo {
	var out []combo
	for _, s := range testSuites() {
		for _, m := range s.Modes() {
			out = append(out, combo{s, m})
		}
	}
	if len(out) == 0 {
		t.Fatal("no suite to test")
	}
	return out
}

// env is a client under test plus the C2 side that commands it.
type env struct {
	t     testing.TB
	combo combo
	clock *fakeClock
	c     *Client
	pk    core.PKSuite
	skKey []byte        // SK: the client key as C2 knows it
	ident core.Identity // PK: the client identity as C2 knows it (public part used)
	c2    core.C2Key    // PK
	name  string
}

var t0 = time.Unix(1_700_000_000, 0)

func newEnv(t testing.TB, cb combo, mods ...func(*Config)) *env {
	t.Helper()
	e := &env{t: t, combo: cb, clock: newFakeClock(t0), name: "device-1"}
	cfg := Config{Suite: cb.suite, Mode: cb.mode, Name: e.name, Clock: e.clock.Now}
	if cb.mode == core.SymKey {
		k, err := cb.suite.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		e.skKey, cfg.Key = k, k
	} else {
		e.pk = cb.suite.(core.PKSuite)
		var err error
		if e.ident, err = e.pk.GenerateIdentity(); err != nil {
			t.Fatal(err)
		}
		if e.c2, err = e.pk.GenerateC2Key(); err != nil {
			t.Fatal(err)
		}
		cfg.Key, cfg.C2PublicKey = e.ident.Bytes(), e.c2.PublicKey()
	}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.c = c
	return e
}

// protectCommand protects cmd the way C2 does, with the keys C2 currently
// believes the client has.
func (e *env) protectCommand(cmd []byte) []byte {
	e.t.Helper()
	var p []byte
	var err error
	if e.combo.mode == core.SymKey {
		p, err = e.combo.suite.Protect(e.skKey, cmd, e.clock.Now())
	} else {
		p, err = e.pk.ProtectCommand(e.c2, e.ident.PublicKey(), cmd, e.clock.Now())
	}
	if err != nil {
		e.t.Fatalf("protect command: %v", err)
	}
	return p
}

// send delivers cmd on the control topic and returns the client's error.
func (e *env) send(cmd []byte) error {
	e.t.Helper()
	payload, isCmd, err := e.c.Unprotect(e.protectCommand(cmd), e.c.ControlTopic())
	if !isCmd || payload != nil {
		e.t.Fatalf("control topic message: isCommand=%v payload=%x", isCmd, payload)
	}
	return err
}

func (e *env) mustSend(cmd []byte, err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("encode: %v", err)
	}
	if err := e.send(cmd); err != nil {
		e.t.Fatalf("command 0x%02x: %v", cmd[0], err)
	}
}

func (e *env) setTopicKey(topic string, key []byte) {
	e.t.Helper()
	e.mustSend(core.EncodeSetTopicKey(key, e.combo.suite.HashTopic(topic)))
}

func (e *env) newKey() []byte {
	e.t.Helper()
	k, err := e.combo.suite.GenerateKey()
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

// peer is another PK device whose messages the client under test reads.
type peer struct {
	id    []byte
	ident core.Identity
}

func newPeer(t testing.TB, s core.PKSuite, name string) peer {
	t.Helper()
	ident, err := s.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	id := s.ID(name)
	bound, err := bindIdentity(s, ident, id)
	if err != nil {
		t.Fatal(err)
	}
	return peer{id: id, ident: bound}
}

// protectFrom protects an application message as a sender holding key:
// SK, with the suite; PK, signed by p.
func (e *env) protectFrom(p peer, key, msg []byte, ts time.Time) []byte {
	e.t.Helper()
	var out []byte
	var err error
	if e.combo.mode == core.SymKey {
		out, err = e.combo.suite.Protect(key, msg, ts)
	} else {
		out, err = e.pk.ProtectSigned(p.ident, key, msg, ts)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func wantErr(t testing.TB, err, want error, what string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("%s: unexpected error %v", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func wantPayload(t testing.TB, c *Client, protected []byte, topic string, want []byte) {
	t.Helper()
	got, isCmd, err := c.Unprotect(protected, topic)
	if err != nil || isCmd || !bytes.Equal(got, want) {
		t.Fatalf("Unprotect on %s = %q, %v, %v; want %q", topic, got, isCmd, err, want)
	}
}
