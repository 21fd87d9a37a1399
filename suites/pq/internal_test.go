package pq

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/e4c2/e4c2/suites/core"
)

// TestContextSeparation checks that the ML-DSA context strings separate
// message and command signatures: the same key signing the same bytes under
// the other context is refused.
func TestContextSeparation(t *testing.T) {
	s := New()
	ts := time.Unix(1_700_000_000, 0)
	w := core.DefaultWindow()
	id, err := NewIdentityFromSeed(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	id, _ = id.WithClientID(s.ID("alice"))
	c2, _ := NewC2KeyFromSeed(bytes.Repeat([]byte{2}, 32))
	key := bytes.Repeat([]byte{3}, 32)

	// A PK message re-signed under the command context.
	msg, err := s.ProtectSigned(id, key, []byte("hi"), ts)
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Clone(msg[:len(msg)-SignatureSize])
	resigned, err := appendSignature(body, id.sigPriv, ContextCommand, false)
	if err != nil {
		t.Fatal(err)
	}
	lookup := func([]byte) ([]byte, error) { return id.SigningPublicKey(), nil }
	if _, _, err := s.UnprotectSigned(key, resigned, ts, w, lookup); !errors.Is(err, core.ErrInvalidSignature) {
		t.Fatalf("message signed under the command context: %v", err)
	}

	// A command re-signed by C2 under the message context.
	cmd, err := s.ProtectCommand(c2, id.PublicKey(), []byte{1}, ts)
	if err != nil {
		t.Fatal(err)
	}
	body = bytes.Clone(cmd[:len(cmd)-SignatureSize])
	resigned, err = appendSignature(body, c2.priv, ContextMessage, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UnprotectCommand(id, c2.PublicKey(), resigned, ts, w); !errors.Is(err, core.ErrInvalidSignature) {
		t.Fatalf("command signed under the message context: %v", err)
	}
	// Control: the same body under the right context is accepted.
	good, _ := appendSignature(bytes.Clone(body), c2.priv, ContextCommand, false)
	if _, err := s.UnprotectCommand(id, c2.PublicKey(), good, ts, w); err != nil {
		t.Fatalf("control: %v", err)
	}
}

// TestSeedExpansionLabels checks that the two identity keys come from
// distinct SHAKE-256 outputs and that neither is the raw seed.
func TestSeedExpansionLabels(t *testing.T) {
	seed := bytes.Repeat([]byte{9}, 32)
	a, b := make([]byte, 64), make([]byte, 64)
	expand(a, LabelIdentityMLDSA, seed)
	expand(b, LabelIdentityMLKEM, seed)
	if bytes.Equal(a, b) || bytes.Equal(a[:32], seed) || bytes.Equal(b[:32], seed) {
		t.Fatal("labels do not separate the expansions")
	}
}
