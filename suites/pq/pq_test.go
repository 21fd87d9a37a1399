package pq_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/pq"
)

var (
	ts  = time.Unix(1_700_000_000, 0)
	win = core.DefaultWindow()
)

func seed(b byte) []byte { return bytes.Repeat([]byte{b}, pq.KeySize) }

func identity(t testing.TB, b byte, name string) *pq.Identity {
	t.Helper()
	id, err := pq.NewIdentityFromSeed(seed(b))
	if err != nil {
		t.Fatal(err)
	}
	id, err = id.WithClientID(pq.New().ID(name))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func c2key(t testing.TB, b byte) *pq.C2Key {
	t.Helper()
	k, err := pq.NewC2KeyFromSeed(seed(b))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signers returns a signer lookup that knows exactly the given identities.
func signers(ids ...*pq.Identity) func([]byte) ([]byte, error) {
	return func(id []byte) ([]byte, error) {
		for _, i := range ids {
			if bytes.Equal(i.ClientID(), id) {
				return i.SigningPublicKey(), nil
			}
		}
		return nil, fmt.Errorf("lookup %x: %w", id, core.ErrPubKeyNotFound)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func TestSuiteShape(t *testing.T) {
	s := pq.New()
	if s.Name() != "pq" {
		t.Fatalf("Name = %q", s.Name())
	}
	if m := s.Modes(); len(m) != 1 || m[0] != core.PubKey {
		t.Fatalf("Modes = %v, want only PubKey", m)
	}
	want := core.Sizes{Key: 32, SKOverhead: 24, PKOverhead: 3349, IdentityKey: 32, PublicKey: 3136,
		SigningPublic: 1952, Signature: 3309, C2PublicKey: 1952, CommandOverhead: 4421}
	if got := s.Sizes(); got != want {
		t.Fatalf("Sizes = %+v, want %+v", got, want)
	}
	// The sizes must be what the code produces, not only what it declares.
	id := identity(t, 1, "a")
	c2 := c2key(t, 2)
	if len(id.Bytes()) != want.IdentityKey || len(id.PublicKey()) != want.PublicKey ||
		len(id.SigningPublicKey()) != want.SigningPublic || len(c2.PublicKey()) != want.C2PublicKey ||
		len(c2.Bytes()) != want.Key {
		t.Fatal("key lengths disagree with Sizes")
	}
	key, _ := s.GenerateKey()
	for _, n := range []int{1, 100} {
		msg := make([]byte, n)
		sk, _ := s.Protect(key, msg, ts)
		pk, err := s.ProtectSigned(id, key, msg, ts)
		if err != nil {
			t.Fatal(err)
		}
		cmd, err := s.ProtectCommand(c2, id.PublicKey(), msg, ts)
		if err != nil {
			t.Fatal(err)
		}
		if len(sk)-n != want.SKOverhead || len(pk)-n != want.PKOverhead || len(cmd)-n != want.CommandOverhead {
			t.Fatalf("overheads %d/%d/%d disagree with Sizes", len(sk)-n, len(pk)-n, len(cmd)-n)
		}
	}
	if got := s.ID("client-1"); !bytes.Equal(got, core.HashID([]byte("client-1"))) {
		t.Fatal("ID is not core.HashID")
	}
	if got := s.HashTopic("topic/a"); !bytes.Equal(got, core.HashID([]byte("topic/a"))) {
		t.Fatal("HashTopic is not core.HashID")
	}
}

func TestIdentity(t *testing.T) {
	s := pq.New()
	a, err := s.IdentityFromSeed(seed(1))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.ParseIdentity(a.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.PublicKey(), b.PublicKey()) {
		t.Fatal("ParseIdentity(Bytes()) gives another key")
	}
	if !bytes.Equal(a.SigningPublicKey(), a.PublicKey()[:pq.SigningPublicKeySize]) {
		t.Fatal("SigningPublicKey is not the prefix of PublicKey")
	}
	got, err := s.SigningPublicKey(a.PublicKey())
	if err != nil || !bytes.Equal(got, a.SigningPublicKey()) {
		t.Fatalf("Suite.SigningPublicKey = %v", err)
	}
	// Copies, not views.
	bb := a.Bytes()
	bb[0] ^= 0xff
	pub := a.PublicKey()
	pub[0] ^= 0xff
	if !bytes.Equal(a.Bytes(), seed(1)) || bytes.Equal(a.PublicKey(), pub) {
		t.Fatal("Bytes or PublicKey returned internal storage")
	}
	c, _ := s.IdentityFromSeed(seed(2))
	if bytes.Equal(a.PublicKey()[:pq.SigningPublicKeySize], c.PublicKey()[:pq.SigningPublicKeySize]) ||
		bytes.Equal(a.PublicKey()[pq.SigningPublicKeySize:], c.PublicKey()[pq.SigningPublicKeySize:]) {
		t.Fatal("different seeds share a key")
	}
	g1, _ := s.GenerateIdentity()
	g2, _ := s.GenerateIdentity()
	if bytes.Equal(g1.Bytes(), g2.Bytes()) {
		t.Fatal("GenerateIdentity repeats")
	}
	for _, n := range []int{0, 16, 31, 33, 64} {
		_, err := s.ParseIdentity(make([]byte, n))
		wantErr(t, fmt.Sprintf("ParseIdentity(%d bytes)", n), err, core.ErrInvalidKey)
	}
	if !a.(*pq.Identity).Equal(b.(*pq.Identity)) || a.(*pq.Identity).Equal(c.(*pq.Identity)) {
		t.Fatal("Equal")
	}
	if _, err := a.(*pq.Identity).WithClientID(make([]byte, 15)); err == nil {
		t.Fatal("15-byte client id accepted")
	}
}

func TestCheckPublicKey(t *testing.T) {
	s := pq.New()
	id := identity(t, 1, "a")
	if err := s.CheckPublicKey(id.PublicKey()); err != nil {
		t.Fatal(err)
	}
	pub := id.PublicKey()
	bad := map[string][]byte{
		"empty":          nil,
		"signing only":   id.SigningPublicKey(),
		"one byte short": pub[:len(pub)-1],
		"one byte long":  append(bytes.Clone(pub), 0),
		// 0xff bytes decode to 12-bit coefficients 4095 >= q = 3329: the
		// FIPS 203 encapsulation key check must refuse it.
		"unreduced KEM key": append(bytes.Clone(pub[:pq.SigningPublicKeySize]), bytes.Repeat([]byte{0xff}, pq.KEMPublicKeySize)...),
		// Degenerate keys: t1 = 0 lets anyone sign, t-hat = 0 lets anyone
		// read the encapsulated secret.
		"all zero":          make([]byte, pq.PublicKeySize),
		"ML-DSA t1 zero":    append(append(bytes.Clone(pub[:32]), make([]byte, pq.SigningPublicKeySize-32)...), pub[pq.SigningPublicKeySize:]...),
		"ML-KEM t-hat zero": append(append(bytes.Clone(pub[:pq.SigningPublicKeySize]), make([]byte, pq.KEMPublicKeySize-32)...), pub[len(pub)-32:]...),
	}
	c2 := c2key(t, 9)
	for name, k := range bad {
		wantErr(t, "CheckPublicKey "+name, s.CheckPublicKey(k), core.ErrInvalidKey)
		_, err := s.SigningPublicKey(k)
		wantErr(t, "SigningPublicKey "+name, err, core.ErrInvalidKey)
		_, err = s.ProtectCommand(c2, k, []byte{1}, ts)
		wantErr(t, "ProtectCommand "+name, err, core.ErrInvalidKey)
	}
	if err := s.CheckC2PublicKey(c2.PublicKey()); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 32, 1951, 1952, 1953, 3136} {
		wantErr(t, fmt.Sprintf("CheckC2PublicKey(%d zero bytes)", n), s.CheckC2PublicKey(make([]byte, n)), core.ErrInvalidKey)
	}
	zeroT1 := append(c2.PublicKey()[:32:32], make([]byte, pq.C2PublicKeySize-32)...)
	wantErr(t, "C2 key with t1 = 0", s.CheckC2PublicKey(zeroT1), core.ErrInvalidKey)
	id3 := identity(t, 3, "c")
	cmd, _ := s.ProtectCommand(c2, id3.PublicKey(), []byte{1}, ts)
	_, err := s.UnprotectCommand(id3, zeroT1, cmd, ts, win)
	wantErr(t, "UnprotectCommand with a degenerate C2 key", err, core.ErrInvalidKey)
	msg, _ := s.ProtectSigned(id3, seed(7), []byte("x"), ts)
	_, _, err = s.UnprotectSigned(seed(7), msg, ts, win, func([]byte) ([]byte, error) { return zeroT1, nil })
	wantErr(t, "UnprotectSigned with a degenerate signer key", err, core.ErrInvalidKey)
}

func TestC2Key(t *testing.T) {
	s := pq.New()
	k, err := s.GenerateC2Key()
	if err != nil {
		t.Fatal(err)
	}
	back, err := s.ParseC2Key(k.Bytes())
	if err != nil || !bytes.Equal(back.PublicKey(), k.PublicKey()) {
		t.Fatalf("ParseC2Key(Bytes()) = %v", err)
	}
	for _, n := range []int{0, 31, 33, 4032} {
		_, err := s.ParseC2Key(make([]byte, n))
		wantErr(t, fmt.Sprintf("ParseC2Key(%d)", n), err, core.ErrInvalidKey)
	}
}

func TestSymmetricLayer(t *testing.T) {
	s := pq.New()
	key := seed(7)
	p, err := s.Protect(key, []byte("payload"), ts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Unprotect(key, p, ts, win)
	if err != nil || string(got) != "payload" {
		t.Fatalf("Unprotect = %q, %v", got, err)
	}
	again, _ := s.Protect(key, []byte("payload"), ts)
	if !bytes.Equal(p, again) {
		t.Fatal("AES-SIV layer is not deterministic")
	}
	empty, err := s.Protect(key, nil, ts)
	if err != nil || len(empty) != pq.SKOverhead {
		t.Fatalf("empty Protect = %d bytes, %v", len(empty), err)
	}
	_, err = s.Unprotect(key, empty, ts, win)
	wantErr(t, "24-byte message", err, core.ErrInvalidProtectedLen)
	_, err = s.Unprotect(seed(8), p, ts, win)
	wantErr(t, "wrong key", err, core.ErrNotAuthentic)
	_, err = s.Unprotect(key, p, ts.Add(11*time.Minute), win)
	wantErr(t, "old", err, core.ErrTimestampTooOld)
	_, err = s.Unprotect(key, p, ts.Add(-time.Second), win)
	wantErr(t, "future", err, core.ErrTimestampInFuture)
	for i := range p {
		bad := bytes.Clone(p)
		bad[i] ^= 0x20
		if _, err := s.Unprotect(key, bad, ts, core.Window{MaxAge: 1 << 62, MaxSkew: 1 << 62}); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	_, err = s.Protect(key[:16], nil, ts)
	wantErr(t, "short key", err, core.ErrInvalidKey)
	_, err = s.Unprotect(key[:16], p, ts, win)
	wantErr(t, "short key", err, core.ErrInvalidKey)
}

func TestSigned(t *testing.T) {
	s := pq.New()
	alice, bob := identity(t, 1, "alice"), identity(t, 2, "bob")
	key := seed(7)
	lookup := signers(alice, bob)
	msg := []byte("hello, post-quantum bob")
	p, err := s.ProtectSigned(alice, key, msg, ts)
	if err != nil {
		t.Fatal(err)
	}
	got, sender, err := s.UnprotectSigned(key, p, ts, win, lookup)
	if err != nil || !bytes.Equal(got, msg) || !bytes.Equal(sender, alice.ClientID()) {
		t.Fatalf("UnprotectSigned = %q, %x, %v", got, sender, err)
	}
	if sid, err := s.SenderID(p); err != nil || !bytes.Equal(sid, alice.ClientID()) {
		t.Fatalf("SenderID = %x, %v", sid, err)
	}
	// Hedged signing: the same message twice gives two valid encodings that
	// share everything but the signature.
	p2, _ := s.ProtectSigned(alice, key, msg, ts)
	if bytes.Equal(p, p2) || !bytes.Equal(p[:len(p)-pq.SignatureSize], p2[:len(p2)-pq.SignatureSize]) {
		t.Fatal("signing is not hedged, or the body changed")
	}
	if _, _, err := s.UnprotectSigned(key, p2, ts, win, lookup); err != nil {
		t.Fatal(err)
	}
	// Deterministic variant: reproducible and accepted.
	d1, _ := pq.ProtectSignedDeterministic(alice, key, msg, ts)
	d2, _ := pq.ProtectSignedDeterministic(alice, key, msg, ts)
	if !bytes.Equal(d1, d2) {
		t.Fatal("deterministic signing differs")
	}
	if _, _, err := s.UnprotectSigned(key, d1, ts, win, lookup); err != nil {
		t.Fatal(err)
	}
	// Empty plaintext: exactly the overhead, accepted.
	e, _ := s.ProtectSigned(alice, key, nil, ts)
	if got, _, err := s.UnprotectSigned(key, e, ts, win, lookup); err != nil || len(got) != 0 {
		t.Fatalf("empty plaintext: %x, %v", got, err)
	}

	// Negative cases.
	_, _, err = s.UnprotectSigned(seed(8), p, ts, win, lookup)
	wantErr(t, "wrong topic key", err, core.ErrNotAuthentic)
	_, _, err = s.UnprotectSigned(key, p, ts, win, signers(bob))
	wantErr(t, "unknown signer", err, core.ErrPubKeyNotFound)
	_, _, err = s.UnprotectSigned(key, p, ts, win, func([]byte) ([]byte, error) { return nil, errors.New("db down") })
	wantErr(t, "lookup failure", err, core.ErrPubKeyNotFound)
	_, _, err = s.UnprotectSigned(key, p, ts, win, nil)
	wantErr(t, "nil lookup", err, core.ErrPubKeyNotFound)
	_, _, err = s.UnprotectSigned(key, p, ts, win, func([]byte) ([]byte, error) { return bob.SigningPublicKey(), nil })
	wantErr(t, "key of another client", err, core.ErrInvalidSignature)
	_, _, err = s.UnprotectSigned(key, p, ts, win, func([]byte) ([]byte, error) { return alice.PublicKey(), nil })
	wantErr(t, "registered (3136-byte) key as signer key", err, core.ErrInvalidKey)
	_, _, err = s.UnprotectSigned(key, p, ts.Add(10*time.Minute+time.Second), win, lookup)
	wantErr(t, "old", err, core.ErrTimestampTooOld)
	_, _, err = s.UnprotectSigned(key, p, ts.Add(-time.Second), win, lookup)
	wantErr(t, "future", err, core.ErrTimestampInFuture)
	// Impersonation: alice's message relabelled as bob's.
	forged := bytes.Clone(p)
	copy(forged[8:24], bob.ClientID())
	_, _, err = s.UnprotectSigned(key, forged, ts, win, lookup)
	wantErr(t, "relabelled sender", err, core.ErrInvalidSignature)

	unbound, _ := pq.NewIdentityFromSeed(seed(1))
	_, err = s.ProtectSigned(unbound, key, msg, ts)
	wantErr(t, "unbound identity", err, core.ErrInvalidKey)
	_, err = s.ProtectSigned(alice, key[:31], msg, ts)
	wantErr(t, "short topic key", err, core.ErrInvalidKey)
}

// TestSignedTamper flips every byte of a PK message: each must be refused
// (the signature covers the whole message, so nearly all are
// ErrInvalidSignature; the timestamp and sender id may fail earlier).
func TestSignedTamper(t *testing.T) {
	s := pq.New()
	alice := identity(t, 1, "alice")
	key := seed(7)
	p, _ := s.ProtectSigned(alice, key, []byte("tamper me"), ts)
	wide := core.Window{MaxAge: 1 << 62, MaxSkew: 1 << 62}
	step := 1
	if testing.Short() {
		step = 37
	}
	for i := 0; i < len(p); i += step {
		bad := bytes.Clone(p)
		bad[i] ^= 0x04
		_, _, err := s.UnprotectSigned(key, bad, ts, wide, signers(alice))
		switch {
		case i < 8:
			// A flipped high timestamp byte may leave even a wide window.
			if !errors.Is(err, core.ErrInvalidSignature) && !errors.Is(err, core.ErrTimestampTooOld) &&
				!errors.Is(err, core.ErrTimestampInFuture) {
				t.Fatalf("byte %d (timestamp): got %v", i, err)
			}
		case i >= 8 && i < 24:
			wantErr(t, fmt.Sprintf("byte %d (sender id)", i), err, core.ErrPubKeyNotFound)
		default:
			wantErr(t, fmt.Sprintf("byte %d", i), err, core.ErrInvalidSignature)
		}
	}
}

// TestTruncations cuts messages and commands at every length: never a
// panic, always the length error below the overhead and a refusal above.
func TestTruncations(t *testing.T) {
	s := pq.New()
	alice := identity(t, 1, "alice")
	c2 := c2key(t, 9)
	key := seed(7)
	pk, _ := s.ProtectSigned(alice, key, []byte("truncate me"), ts)
	cmd, _ := s.ProtectCommand(c2, alice.PublicKey(), []byte{0x03, 1, 2, 3}, ts)
	for n := 0; n < len(pk); n++ {
		_, _, err := s.UnprotectSigned(key, pk[:n], ts, win, signers(alice))
		if n < pq.PKOverhead {
			wantErr(t, fmt.Sprintf("pk cut to %d", n), err, core.ErrInvalidProtectedLen)
			_, err := s.SenderID(pk[:n])
			wantErr(t, fmt.Sprintf("SenderID cut to %d", n), err, core.ErrInvalidProtectedLen)
		} else if err == nil {
			t.Fatalf("pk cut to %d accepted", n)
		}
	}
	for n := 0; n < len(cmd); n++ {
		_, err := s.UnprotectCommand(alice, c2.PublicKey(), cmd[:n], ts, win)
		if n <= pq.CommandOverhead {
			wantErr(t, fmt.Sprintf("command cut to %d", n), err, core.ErrInvalidProtectedLen)
		} else if err == nil {
			t.Fatalf("command cut to %d accepted", n)
		}
	}
}

func TestCommand(t *testing.T) {
	s := pq.New()
	alice, bob := identity(t, 1, "alice"), identity(t, 2, "bob")
	c2, other := c2key(t, 9), c2key(t, 10)
	cmd := append([]byte{0x06}, bob.SigningPublicKey()...)
	cmd = append(cmd, bob.ClientID()...)
	p, err := s.ProtectCommand(c2, alice.PublicKey(), cmd, ts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.UnprotectCommand(alice, c2.PublicKey(), p, ts, win)
	if err != nil || !bytes.Equal(got, cmd) {
		t.Fatalf("UnprotectCommand = %v", err)
	}
	// Fresh encapsulation each time.
	p2, _ := s.ProtectCommand(c2, alice.PublicKey(), cmd, ts)
	if bytes.Equal(p[8:8+pq.KEMCiphertextSize], p2[8:8+pq.KEMCiphertextSize]) {
		t.Fatal("KEM ciphertext repeated: encapsulation is not fresh")
	}
	// An unbound identity (no client id) can still read commands: only
	// PK messages carry the id.
	raw, _ := pq.NewIdentityFromSeed(seed(1))
	if _, err := s.UnprotectCommand(raw, c2.PublicKey(), p, ts, win); err != nil {
		t.Fatal(err)
	}

	_, err = s.UnprotectCommand(alice, other.PublicKey(), p, ts, win)
	wantErr(t, "wrong C2 key", err, core.ErrInvalidSignature)
	_, err = s.UnprotectCommand(bob, c2.PublicKey(), p, ts, win)
	wantErr(t, "wrong client", err, core.ErrNotAuthentic)
	_, err = s.UnprotectCommand(alice, c2.PublicKey()[:1000], p, ts, win)
	wantErr(t, "short C2 key", err, core.ErrInvalidKey)
	_, err = s.UnprotectCommand(alice, c2.PublicKey(), p, ts.Add(10*time.Minute+time.Second), win)
	wantErr(t, "old", err, core.ErrTimestampTooOld)
	_, err = s.UnprotectCommand(alice, c2.PublicKey(), p, ts.Add(-time.Second), win)
	wantErr(t, "future", err, core.ErrTimestampInFuture)
	empty, err := s.ProtectCommand(c2, alice.PublicKey(), nil, ts)
	if err != nil || len(empty) != pq.CommandOverhead {
		t.Fatalf("empty command: %d bytes, %v", len(empty), err)
	}
	_, err = s.UnprotectCommand(alice, c2.PublicKey(), empty, ts, win)
	wantErr(t, "empty command", err, core.ErrInvalidProtectedLen)

	for i := 0; i < len(p); i += 97 {
		bad := bytes.Clone(p)
		bad[i] ^= 0x10
		_, err := s.UnprotectCommand(alice, c2.PublicKey(), bad, ts, core.Window{MaxAge: time.Hour, MaxSkew: time.Hour})
		wantErr(t, fmt.Sprintf("command byte %d", i), err, core.ErrInvalidSignature)
	}
	_, err = pq.ProtectCommandDeterministic(c2, alice.PublicKey(), cmd, ts, make([]byte, 31))
	wantErr(t, "short encapsulation seed", err, core.ErrInvalidKey)
	d1, _ := pq.ProtectCommandDeterministic(c2, alice.PublicKey(), cmd, ts, seed(3))
	d2, _ := pq.ProtectCommandDeterministic(c2, alice.PublicKey(), cmd, ts, seed(3))
	if !bytes.Equal(d1, d2) {
		t.Fatal("deterministic command differs")
	}
}

// foreign wraps an identity the way a device library might; the suite must
// use it through Bytes and ClientID.
type foreign struct {
	core.Identity
	cid []byte
}

func (f foreign) ClientID() []byte { return f.cid }

type foreignC2 struct{ core.C2Key }

type badIdentity struct{ core.Identity }

func (badIdentity) Bytes() []byte { return make([]byte, 64) }

func TestForeignKeys(t *testing.T) {
	s := pq.New()
	raw, _ := pq.NewIdentityFromSeed(seed(1))
	f := foreign{Identity: raw, cid: s.ID("alice")}
	c2 := c2key(t, 9)
	key := seed(7)
	p, err := s.ProtectSigned(f, key, []byte("x"), ts)
	if err != nil {
		t.Fatal(err)
	}
	lookup := func([]byte) ([]byte, error) { return raw.SigningPublicKey(), nil }
	if _, sender, err := s.UnprotectSigned(key, p, ts, win, lookup); err != nil || !bytes.Equal(sender, f.cid) {
		t.Fatalf("wrapped identity: %x, %v", sender, err)
	}
	cmd, err := s.ProtectCommand(foreignC2{c2}, raw.PublicKey(), []byte{1}, ts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UnprotectCommand(f, c2.PublicKey(), cmd, ts, win); err != nil {
		t.Fatal(err)
	}
	_, err = s.ProtectSigned(badIdentity{raw}, key, []byte("x"), ts)
	wantErr(t, "64-byte identity", err, core.ErrInvalidKey)
	_, err = s.UnprotectCommand(nil, c2.PublicKey(), cmd, ts, win)
	wantErr(t, "nil identity", err, core.ErrInvalidKey)
	_, err = s.ProtectCommand(nil, raw.PublicKey(), []byte{1}, ts)
	wantErr(t, "nil c2 key", err, core.ErrInvalidKey)
}

func TestDeriveKey(t *testing.T) {
	s := pq.New()
	for _, bad := range []string{"", "fifteen bytes!!", "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4\xf3\xf2\xf1\xf0"} {
		_, err := s.DeriveKey(bad)
		wantErr(t, fmt.Sprintf("DeriveKey(%q)", bad), err, core.ErrInvalidPassword)
	}
	if testing.Short() {
		return // each derivation costs 64 MiB and a few hundred ms
	}
	a, err := s.DeriveKey("sixteen bytes!!!")
	if err != nil || len(a) != pq.KeySize {
		t.Fatalf("DeriveKey = %d bytes, %v", len(a), err)
	}
	b, _ := s.DeriveKey("sixteen bytes!!?")
	if bytes.Equal(a, b) {
		t.Fatal("two passwords give one key")
	}
	if _, err := s.IdentityFromSeed(a); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrent shares one identity and one C2 key between goroutines
// (run with -race).
func TestConcurrent(t *testing.T) {
	s := pq.New()
	alice := identity(t, 1, "alice")
	c2 := c2key(t, 9)
	key := seed(7)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			msg := []byte{byte(g)}
			p, err := s.ProtectSigned(alice, key, msg, ts)
			if err == nil {
				_, _, err = s.UnprotectSigned(key, p, ts, win, signers(alice))
			}
			if err == nil {
				var c []byte
				c, err = s.ProtectCommand(c2, alice.PublicKey(), msg, ts)
				if err == nil {
					_, err = s.UnprotectCommand(alice, c2.PublicKey(), c, ts, win)
				}
			}
			errs <- err
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestBindIdentity(t *testing.T) {
	s := pq.New()
	raw, _ := pq.NewIdentityFromSeed(seed(1))
	cid := s.ID("alice")
	for name, in := range map[string]core.Identity{"own": raw, "wrapped": foreign{Identity: raw}} {
		b, err := s.BindIdentity(in, cid)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(b.ClientID(), cid) || !bytes.Equal(b.PublicKey(), raw.PublicKey()) {
			t.Fatalf("%s: bound identity differs", name)
		}
		p, err := s.ProtectSigned(b, seed(7), []byte("x"), ts)
		if err != nil {
			t.Fatal(err)
		}
		if sid, _ := s.SenderID(p); !bytes.Equal(sid, cid) {
			t.Fatalf("%s: sender id %x", name, sid)
		}
	}
	if raw.ClientID() != nil {
		t.Fatal("BindIdentity changed its input")
	}
	_, err := s.BindIdentity(nil, cid)
	wantErr(t, "nil identity", err, core.ErrInvalidKey)
	_, err = s.BindIdentity((*pq.Identity)(nil), cid)
	wantErr(t, "typed nil identity", err, core.ErrInvalidKey)
	_, err = s.BindIdentity(badIdentity{raw}, cid)
	wantErr(t, "64-byte identity", err, core.ErrInvalidKey)
	_, err = s.BindIdentity(raw, cid[:15])
	wantErr(t, "15-byte client id", err, core.ErrInvalidName)
}
