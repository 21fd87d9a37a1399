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

func leUint64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func isInvalidKey(err error) bool { return errors.Is(err, core.ErrInvalidKey) }

// TestKeyCacheBounded checks that the decoded-key cache stays bounded and
// keeps giving correct keys after evictions.
func TestKeyCacheBounded(t *testing.T) {
	s := New()
	ts := time.Unix(1_700_000_000, 0)
	w := core.DefaultWindow()
	key := bytes.Repeat([]byte{3}, 32)
	var msgs [][]byte
	var pubs [][]byte
	for i := 0; i < maxCachedKeys+6; i++ {
		id, err := NewIdentityFromSeed(bytes.Repeat([]byte{byte(i)}, 32))
		if err != nil {
			t.Fatal(err)
		}
		id, _ = id.WithClientID(s.ID("client"))
		m, err := s.ProtectSigned(id, key, []byte{byte(i)}, ts)
		if err != nil {
			t.Fatal(err)
		}
		msgs, pubs = append(msgs, m), append(pubs, id.SigningPublicKey())
	}
	for round := 0; round < 2; round++ {
		for i, m := range msgs {
			pub := pubs[i]
			got, _, err := s.UnprotectSigned(key, m, ts, w, func([]byte) ([]byte, error) { return pub, nil })
			if err != nil || !bytes.Equal(got, []byte{byte(i)}) {
				t.Fatalf("round %d key %d: %v", round, i, err)
			}
			other := pubs[(i+1)%len(pubs)]
			if _, _, err := s.UnprotectSigned(key, m, ts, w, func([]byte) ([]byte, error) { return other, nil }); !errors.Is(err, core.ErrInvalidSignature) {
				t.Fatalf("round %d key %d: cached key of another signer accepted: %v", round, i, err)
			}
		}
	}
	s.keys.mu.Lock()
	n := len(s.keys.m)
	s.keys.mu.Unlock()
	if n > maxCachedKeys {
		t.Fatalf("cache holds %d keys, bound is %d", n, maxCachedKeys)
	}
}
