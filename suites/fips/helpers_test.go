package fips_test

import (
	"crypto/sha3"
	"encoding/hex"
	"testing"
	"time"

	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/fips"
)

// t0 is the fixed clock of the tests: protect at t0, check at t0.
var t0 = time.Unix(1_760_000_000, 0)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// seq returns n bytes start, start+1, ... (mod 256): readable fixed keys.
func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

// boundIdentity expands seed and binds it to the id of name.
func boundIdentity(t testing.TB, seed []byte, name string) *fips.Identity {
	t.Helper()
	id, err := fips.IdentityFromSeed(seed)
	if err != nil {
		t.Fatalf("IdentityFromSeed: %v", err)
	}
	id, err = id.WithClientID(core.HashID([]byte(name)))
	if err != nil {
		t.Fatalf("WithClientID: %v", err)
	}
	return id
}

// signers returns a signer lookup that knows exactly the given identities.
func signers(ids ...*fips.Identity) func([]byte) ([]byte, error) {
	m := map[string][]byte{}
	for _, id := range ids {
		m[string(id.ClientID())] = id.SigningPublicKey()
	}
	return func(sender []byte) ([]byte, error) {
		pub, ok := m[string(sender)]
		if !ok {
			return nil, core.ErrPubKeyNotFound
		}
		return pub, nil
	}
}

func sha3Sum(b []byte) []byte {
	h := sha3.Sum256(b)
	return h[:]
}

func hexString(b []byte) string { return hex.EncodeToString(b) }
