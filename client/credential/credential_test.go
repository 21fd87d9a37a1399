package credential_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/e4c2/e4c2/client/credential"
	"github.com/e4c2/e4c2/suites"
	"github.com/e4c2/e4c2/suites/core"
)

// A worked example, computed with nothing but the standard library: the
// documentation's SK recipe.
func TestSKPasswordWorkedExample(t *testing.T) {
	id := bytes.Repeat([]byte{0x11}, 16)
	key := bytes.Repeat([]byte{0x22}, 32)
	m := hmac.New(sha256.New, key)
	m.Write([]byte("e4c2-mqtt-v1:" + strings.Repeat("11", 16)))
	want := hex.EncodeToString(m.Sum(nil))
	if got := credential.SKPassword(key, id); got != want {
		t.Fatalf("SKPassword = %s, want %s", got, want)
	}
	if !credential.VerifySK(key, id, []byte(want)) {
		t.Fatal("VerifySK refused the right password")
	}
	other := bytes.Repeat([]byte{0x23}, 32)
	if credential.VerifySK(other, id, []byte(want)) {
		t.Fatal("VerifySK accepted the password of another key")
	}
	if credential.VerifySK(key, bytes.Repeat([]byte{0x12}, 16), []byte(want)) {
		t.Fatal("VerifySK accepted the password of another id")
	}
	if got := credential.ClientID(id); got != "e4dev-"+strings.Repeat("11", 16) {
		t.Fatalf("ClientID = %s", got)
	}
}

func TestParseUsername(t *testing.T) {
	id := bytes.Repeat([]byte{0xab}, 16)
	got, ok := credential.ParseUsername(credential.Username(id))
	if !ok || !bytes.Equal(got[:], id) {
		t.Fatalf("round trip: %x %v", got, ok)
	}
	for _, bad := range []string{"", "ab", strings.Repeat("AB", 16), strings.Repeat("zz", 16), strings.Repeat("ab", 17)} {
		if _, ok := credential.ParseUsername(bad); ok {
			t.Errorf("ParseUsername(%q) accepted", bad)
		}
	}
}

func TestPKPassword(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, s := range suites.All() {
		pk, ok := s.(core.PKSuite)
		if !ok {
			continue
		}
		t.Run(s.Name(), func(t *testing.T) {
			id := pk.ID("device-a")
			other := pk.ID("device-b")
			ident, err := pk.GenerateIdentity()
			if err != nil {
				t.Fatal(err)
			}
			spub := ident.SigningPublicKey()
			pw, err := credential.PKPassword(pk, ident, id, now)
			if err != nil {
				t.Fatal(err)
			}
			if err := credential.VerifyPK(pk, spub, id, []byte(pw), now.Add(time.Minute)); err != nil {
				t.Fatalf("fresh password refused: %v", err)
			}
			if err := credential.VerifyPK(pk, spub, other, []byte(pw), now); err == nil {
				t.Fatal("password accepted for another id")
			}
			if err := credential.VerifyPK(pk, spub, id, []byte(pw), now.Add(11*time.Minute)); err == nil {
				t.Fatal("expired password accepted")
			}
			if err := credential.VerifyPK(pk, spub, id, []byte(pw), now.Add(-2*time.Minute)); err == nil {
				t.Fatal("password from the future accepted")
			}
			ident2, _ := pk.GenerateIdentity()
			if err := credential.VerifyPK(pk, ident2.SigningPublicKey(), id, []byte(pw), now); err == nil {
				t.Fatal("password accepted under another identity")
			}
			flipped := []byte(pw)
			flipped[len(flipped)/2] ^= 1
			if err := credential.VerifyPK(pk, spub, id, flipped, now); err == nil {
				t.Fatal("tampered password accepted")
			}
			if err := credential.VerifyPK(pk, spub, id, []byte("zz"), now); err == nil {
				t.Fatal("non-hex password accepted")
			}
		})
	}
}

func FuzzVerifyPK(f *testing.F) {
	s, _ := suites.ByName("standard")
	pk := s.(core.PKSuite)
	ident, _ := pk.GenerateIdentity()
	id := pk.ID("fuzz")
	now := time.Unix(1_800_000_000, 0)
	pw, _ := credential.PKPassword(pk, ident, id, now)
	f.Add([]byte(pw))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = credential.VerifyPK(pk, ident.SigningPublicKey(), id, b, now)
		_ = credential.VerifySK(make([]byte, 32), id, b)
	})
}
