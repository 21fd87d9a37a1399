package fips_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/fips"
)

func TestNameModesSizes(t *testing.T) {
	s := fips.New()
	if s.Name() != "fips" {
		t.Errorf("Name = %q", s.Name())
	}
	modes := s.Modes()
	if len(modes) != 2 || modes[0] != core.SymKey || modes[1] != core.PubKey {
		t.Errorf("Modes = %v", modes)
	}
	id := boundIdentity(t, seq(1, 32), "alice")
	c2, err := s.GenerateC2Key()
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	sk, err := s.Protect(k, []byte("abc"), t0)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := s.ProtectSigned(id, k, []byte("abc"), t0)
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := s.ProtectCommand(c2, id.PublicKey(), []byte{1}, t0)
	if err != nil {
		t.Fatal(err)
	}
	// Every size is measured on real outputs, not restated.
	want := core.Sizes{
		Key:             len(k),
		SKOverhead:      len(sk) - 3,
		PKOverhead:      len(pk) - 3,
		IdentityKey:     len(id.Bytes()),
		PublicKey:       len(id.PublicKey()),
		SigningPublic:   len(id.SigningPublicKey()),
		Signature:       len(pk) - 3 - (8 + 16 + 12 + 16),
		C2PublicKey:     len(c2.PublicKey()),
		CommandOverhead: len(cmd) - 1,
	}
	if got := s.Sizes(); got != want {
		t.Errorf("Sizes = %+v, measured %+v", got, want)
	}
	if want.SKOverhead != 36 || want.PKOverhead != 116 || want.PublicKey != 130 || want.SigningPublic != 65 || want.C2PublicKey != 65 {
		t.Errorf("sizes differ from the documented layout: %+v", want)
	}
}

func TestSKLayoutAndChecks(t *testing.T) {
	s := fips.New()
	key := seq(0, 32)
	msg := []byte("temperature=21.5")
	p1, err := s.Protect(key, msg, t0)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := s.Protect(key, msg, t0)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(p1, p2) || bytes.Equal(p1[8:20], p2[8:20]) {
		t.Error("two protections share a nonce: GCM nonces must be random")
	}
	if !bytes.Equal(p1[:8], le64(t0.Unix())) {
		t.Errorf("timestamp prefix %x", p1[:8])
	}
	if got := gcmOpen(t, key, p1[8:], p1[:8]); !bytes.Equal(got, msg) {
		t.Errorf("independent open = %q", got)
	}
	w := core.DefaultWindow()
	got, err := s.Unprotect(key, p1, t0, w)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Unprotect = %q, %v", got, err)
	}
	// Every single-bit flip after the timestamp is an authentication
	// failure; in the timestamp it is either out of window or not authentic.
	for i := range p1 {
		c := bytes.Clone(p1)
		c[i] ^= 0x80
		_, err := s.Unprotect(key, c, t0, core.Window{MaxAge: 1 << 62, MaxSkew: 1 << 62})
		if !errors.Is(err, core.ErrNotAuthentic) && !(i < 8 && (errors.Is(err, core.ErrTimestampTooOld) || errors.Is(err, core.ErrTimestampInFuture))) {
			t.Errorf("flip at %d: %v", i, err)
		}
	}
	// Order: length before timestamp before authenticity.
	if _, err := s.Unprotect(key, p1[:36], t0.Add(time.Hour), w); !errors.Is(err, core.ErrInvalidProtectedLen) {
		t.Errorf("36 bytes: %v", err)
	}
	bad := bytes.Clone(p1)
	bad[len(bad)-1] ^= 1
	if _, err := s.Unprotect(key, bad, t0.Add(time.Hour), w); !errors.Is(err, core.ErrTimestampTooOld) {
		t.Errorf("old and forged: %v", err)
	}
	// Empty plaintext: produced, refused.
	empty, err := s.Protect(key, nil, t0)
	if err != nil || len(empty) != fips.SKOverhead {
		t.Fatalf("Protect(empty) = %d bytes, %v", len(empty), err)
	}
	if _, err := s.Unprotect(key, empty, t0, w); !errors.Is(err, core.ErrInvalidProtectedLen) {
		t.Errorf("empty SK message: %v", err)
	}
	// Only 32-byte keys.
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := s.Protect(make([]byte, n), msg, t0); !errors.Is(err, core.ErrInvalidKey) {
			t.Errorf("Protect with %d-byte key: %v", n, err)
		}
		if _, err := s.Unprotect(make([]byte, n), p1, t0, w); !errors.Is(err, core.ErrInvalidKey) {
			t.Errorf("Unprotect with %d-byte key: %v", n, err)
		}
	}
}

func TestPKLayoutAndCheckOrder(t *testing.T) {
	s := fips.New()
	alice := boundIdentity(t, seq(0x40, 32), "alice")
	key := seq(0x20, 32)
	msg := []byte("hello bob")
	p, err := s.ProtectSigned(alice, key, msg, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != len(msg)+fips.PKOverhead {
		t.Fatalf("length %d", len(p))
	}
	if !bytes.Equal(p[8:24], core.HashID([]byte("alice"))) {
		t.Errorf("sender id %x", p[8:24])
	}
	// The signature is a raw r || s over SHA-256 of the preceding bytes.
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), alice.SigningPublicKey())
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256(p[:len(p)-64])
	r, ss := new(big.Int).SetBytes(p[len(p)-64:len(p)-32]), new(big.Int).SetBytes(p[len(p)-32:])
	if !ecdsa.Verify(pub, d[:], r, ss) {
		t.Error("signature does not verify as r || s over SHA-256(prefix)")
	}
	// The sender id is associated data of the GCM box.
	if got := gcmOpen(t, key, p[24:len(p)-64], p[:24]); !bytes.Equal(got, msg) {
		t.Errorf("independent open = %q", got)
	}
	w := core.DefaultWindow()
	known := signers(alice)
	plain, sender, err := s.UnprotectSigned(key, p, t0, w, known)
	if err != nil || !bytes.Equal(plain, msg) || !bytes.Equal(sender, alice.ClientID()) {
		t.Fatalf("UnprotectSigned = %q, %x, %v", plain, sender, err)
	}

	unknown := func([]byte) ([]byte, error) { return nil, core.ErrPubKeyNotFound }
	broken := func([]byte) ([]byte, error) { return nil, errors.New("store offline") }
	forged := bytes.Clone(p)
	forged[30] ^= 1
	cases := []struct {
		name   string
		msg    []byte
		now    time.Time
		signer func([]byte) ([]byte, error)
		want   error
	}{
		{"115 bytes", p[:115], t0, known, core.ErrInvalidProtectedLen},
		{"8 bytes", p[:8], t0, known, core.ErrInvalidProtectedLen},
		{"timestamp before signer", p, t0.Add(11 * time.Minute), unknown, core.ErrTimestampTooOld},
		{"future", p, t0.Add(-time.Second), unknown, core.ErrTimestampInFuture},
		{"signer before signature", forged, t0, unknown, core.ErrPubKeyNotFound},
		{"lookup failure is not found", p, t0, broken, core.ErrPubKeyNotFound},
		{"nil lookup", p, t0, nil, core.ErrPubKeyNotFound},
		{"signature before decryption", forged, t0, known, core.ErrInvalidSignature},
		{"malformed signer key", p, t0, func([]byte) ([]byte, error) { return make([]byte, 65), nil }, core.ErrInvalidKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := s.UnprotectSigned(key, c.msg, c.now, w, c.signer)
			if !errors.Is(err, c.want) {
				t.Errorf("got %v, want %v", err, c.want)
			}
		})
	}
	// A valid signature over a box under another key: not authentic.
	other, err := s.ProtectSigned(alice, seq(0x21, 32), msg, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.UnprotectSigned(key, other, t0, w, known); !errors.Is(err, core.ErrNotAuthentic) {
		t.Errorf("wrong topic key: %v", err)
	}
	// Exactly the overhead: an empty plaintext, accepted.
	empty, err := s.ProtectSigned(alice, key, nil, t0)
	if err != nil || len(empty) != fips.PKOverhead {
		t.Fatalf("ProtectSigned(empty) = %d bytes, %v", len(empty), err)
	}
	plain, _, err = s.UnprotectSigned(key, empty, t0, w, known)
	if err != nil || plain == nil || len(plain) != 0 {
		t.Errorf("empty PK message: %q, %v", plain, err)
	}
	if _, err := s.SenderID(p[:115]); !errors.Is(err, core.ErrInvalidProtectedLen) {
		t.Errorf("SenderID(short) = %v", err)
	}
	// An unbound identity cannot sign: it does not know its id.
	unbound, err := fips.IdentityFromSeed(seq(0x40, 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ProtectSigned(unbound, key, msg, t0); !errors.Is(err, core.ErrInvalidKey) {
		t.Errorf("unbound identity: %v", err)
	}
}

func TestIdentityDerivation(t *testing.T) {
	s := fips.New()
	a, err := fips.IdentityFromSeed(seq(7, 32))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.ParseIdentity(seq(7, 32))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.PublicKey(), b.PublicKey()) || !bytes.Equal(a.Bytes(), seq(7, 32)) {
		t.Error("identity expansion is not deterministic")
	}
	pub := a.PublicKey()
	if !bytes.Equal(pub[:65], a.SigningPublicKey()) || !bytes.Equal(pub[65:], a.AgreementPublicKey()) {
		t.Error("public key is not signing point || agreement point")
	}
	if bytes.Equal(pub[:65], pub[65:]) {
		t.Error("signing and agreement keys are the same key")
	}
	c, err := fips.IdentityFromSeed(seq(8, 32))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(c.PublicKey()[:65], pub[:65]) || bytes.Equal(c.PublicKey()[65:], pub[65:]) {
		t.Error("different seeds give the same key")
	}
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := s.IdentityFromSeed(make([]byte, n)); !errors.Is(err, core.ErrInvalidKey) {
			t.Errorf("%d-byte seed: %v", n, err)
		}
	}
	if _, err := a.WithClientID(make([]byte, 15)); err == nil {
		t.Error("15-byte client id accepted")
	}
	bound, err := a.WithClientID(seq(0, 16))
	if err != nil {
		t.Fatal(err)
	}
	if a.ClientID() != nil || !bytes.Equal(bound.ClientID(), seq(0, 16)) {
		t.Error("WithClientID changed the receiver or lost the id")
	}
	// Returned slices are copies.
	bound.ClientID()[0] ^= 1
	a.PublicKey()[1] ^= 1
	a.Bytes()[0] ^= 1
	if !bytes.Equal(bound.ClientID(), seq(0, 16)) || !bytes.Equal(a.PublicKey(), pub) || !bytes.Equal(a.Bytes(), seq(7, 32)) {
		t.Error("accessors return internal slices")
	}
	g1, err := s.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	g2, err := s.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(g1.Bytes(), g2.Bytes()) || len(g1.Bytes()) != 32 {
		t.Error("GenerateIdentity is not random")
	}
}

func TestPublicKeyValidation(t *testing.T) {
	s := fips.New()
	id, err := fips.IdentityFromSeed(seq(3, 32))
	if err != nil {
		t.Fatal(err)
	}
	good := id.PublicKey()
	if err := s.CheckPublicKey(good); err != nil {
		t.Fatal(err)
	}
	sp, err := s.SigningPublicKey(good)
	if err != nil || !bytes.Equal(sp, good[:65]) {
		t.Fatalf("SigningPublicKey = %x, %v", sp, err)
	}
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	bad := map[string][]byte{
		"empty":                {},
		"129 bytes":            good[:129],
		"131 bytes":            append(bytes.Clone(good), 0),
		"signing point off":    mut(func(b []byte) []byte { b[64] ^= 1; return b }),
		"agreement point off":  mut(func(b []byte) []byte { b[129] ^= 1; return b }),
		"compressed prefix":    mut(func(b []byte) []byte { b[0] = 0x02; return b }),
		"agreement prefix":     mut(func(b []byte) []byte { b[65] = 0x03; return b }),
		"all zero":             make([]byte, 130),
		"x not reduced mod p":  mut(func(b []byte) []byte { copy(b[1:33], bytes.Repeat([]byte{0xff}, 32)); return b }),
		"standard-suite sized": make([]byte, 32),
	}
	for name, b := range bad {
		if err := s.CheckPublicKey(b); !errors.Is(err, core.ErrInvalidKey) {
			t.Errorf("CheckPublicKey(%s) = %v", name, err)
		}
		if _, err := s.SigningPublicKey(b); !errors.Is(err, core.ErrInvalidKey) {
			t.Errorf("SigningPublicKey(%s) = %v", name, err)
		}
	}
	c2, err := s.GenerateC2Key()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckC2PublicKey(c2.PublicKey()); err != nil {
		t.Error(err)
	}
	for name, b := range map[string][]byte{
		"short":   c2.PublicKey()[:64],
		"off":     func() []byte { b := c2.PublicKey(); b[64] ^= 1; return b }(),
		"zero":    make([]byte, 65),
		"x25519":  make([]byte, 32),
		"130-key": good,
	} {
		if err := s.CheckC2PublicKey(b); !errors.Is(err, core.ErrInvalidKey) {
			t.Errorf("CheckC2PublicKey(%s) = %v", name, err)
		}
	}
	if _, err := s.ProtectCommand(c2, good[:65], []byte{1}, t0); !errors.Is(err, core.ErrInvalidKey) {
		t.Errorf("ProtectCommand to a 65-byte key: %v", err)
	}
}

func TestC2KeyAndCommands(t *testing.T) {
	s := fips.New()
	c2, err := s.GenerateC2Key()
	if err != nil {
		t.Fatal(err)
	}
	back, err := s.ParseC2Key(c2.Bytes())
	if err != nil || !bytes.Equal(back.PublicKey(), c2.PublicKey()) || len(c2.Bytes()) != 32 {
		t.Fatalf("ParseC2Key round trip: %v", err)
	}
	n := unhex(t, "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")
	for name, b := range map[string][]byte{"zero": make([]byte, 32), "n": n, "short": c2.Bytes()[:31], "ff": bytes.Repeat([]byte{0xff}, 32)} {
		if _, err := s.ParseC2Key(b); !errors.Is(err, core.ErrInvalidKey) {
			t.Errorf("ParseC2Key(%s) = %v", name, err)
		}
	}
	id, err := s.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	cmd := []byte{0x01}
	p, err := s.ProtectCommand(c2, id.PublicKey(), cmd, t0)
	if err != nil {
		t.Fatal(err)
	}
	w := core.DefaultWindow()
	got, err := s.UnprotectCommand(id, c2.PublicKey(), p, t0, w)
	if err != nil || !bytes.Equal(got, cmd) {
		t.Fatalf("UnprotectCommand = %x, %v", got, err)
	}
	k, err := s.C2CommandKey(c2, id.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k, independentCommandKey(t, c2.Bytes(), id.PublicKey())) {
		t.Error("command key differs from the documented formula")
	}
	other, err := s.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UnprotectCommand(other, c2.PublicKey(), p, t0, w); !errors.Is(err, core.ErrNotAuthentic) {
		t.Errorf("another client read the command: %v", err)
	}
	if _, err := s.UnprotectCommand(id, c2.PublicKey(), p, t0.Add(time.Hour), w); !errors.Is(err, core.ErrTimestampTooOld) {
		t.Errorf("old command: %v", err)
	}
	if _, err := s.UnprotectCommand(id, c2.PublicKey(), p[:36], t0, w); !errors.Is(err, core.ErrInvalidProtectedLen) {
		t.Errorf("36-byte command: %v", err)
	}
	if _, err := s.UnprotectCommand(nil, c2.PublicKey(), p, t0, w); !errors.Is(err, core.ErrInvalidKey) {
		t.Errorf("nil identity: %v", err)
	}
	if _, err := s.ProtectCommand(nil, id.PublicKey(), cmd, t0); !errors.Is(err, core.ErrInvalidKey) {
		t.Errorf("nil c2 key: %v", err)
	}
}

// foreignIdentity is a core.Identity from outside the package: the suite
// must re-parse its seed, not assume its own type.
type foreignIdentity struct{ seed []byte }

func (f foreignIdentity) Bytes() []byte            { return f.seed }
func (f foreignIdentity) PublicKey() []byte        { return nil }
func (f foreignIdentity) SigningPublicKey() []byte { return nil }

func TestForeignIdentity(t *testing.T) {
	s := fips.New()
	c2, err := s.GenerateC2Key()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := fips.IdentityFromSeed(seq(9, 32))
	p, err := s.ProtectCommand(c2, id.PublicKey(), []byte{5}, t0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.UnprotectCommand(foreignIdentity{seq(9, 32)}, c2.PublicKey(), p, t0, core.DefaultWindow())
	if err != nil || !bytes.Equal(got, []byte{5}) {
		t.Errorf("foreign identity: %x, %v", got, err)
	}
	if _, err := s.UnprotectCommand(foreignIdentity{make([]byte, 64)}, c2.PublicKey(), p, t0, core.DefaultWindow()); !errors.Is(err, core.ErrInvalidKey) {
		t.Errorf("64-byte foreign identity: %v", err)
	}
}

func TestDeriveKeyPasswordRules(t *testing.T) {
	s := fips.New()
	for _, pw := range []string{"", "fifteen bytes!!", "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4\xf3\xf2\xf1\xf0"} {
		if _, err := s.DeriveKey(pw); !errors.Is(err, core.ErrInvalidPassword) {
			t.Errorf("DeriveKey(%q) = %v", pw, err)
		}
	}
	k1, err := s.DeriveKey("sixteen bytes!!!")
	if err != nil {
		t.Fatal(err)
	}
	k2, err := s.DeriveKey("sixteen bytes!!?")
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 32 || bytes.Equal(k1, k2) {
		t.Error("DeriveKey output wrong size or not password-dependent")
	}
	// The derived key works as an identity seed.
	if _, err := s.IdentityFromSeed(k1); err != nil {
		t.Error(err)
	}
}
