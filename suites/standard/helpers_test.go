package standard_test

import (
	"crypto/ed25519"
	"testing"

	"github.com/e4c2/e4c2/suites/core"
)

// signWith signs msg with a standard identity's Ed25519 key (seed || pub).
func signWith(t testing.TB, id core.Identity, msg []byte) []byte {
	t.Helper()
	priv := id.Bytes()
	if len(priv) != ed25519.PrivateKeySize {
		t.Fatalf("identity key has %d bytes", len(priv))
	}
	return ed25519.Sign(ed25519.PrivateKey(priv), msg)
}
