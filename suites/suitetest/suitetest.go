package suitetest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e4c2/e4c2/suites/core"
)

// Sizes are the plaintext sizes every round-trip, tamper and truncation
// check runs at: empty, one byte, around the AES block size, a typical
// payload and a large one.
var Sizes = []int{0, 1, 15, 16, 17, 1000, 65536}

// Every byte position (tamper) and every prefix length (truncation) is
// tried on a protected message of at most exhaustiveLimit bytes or with a
// plaintext of at most exhaustivePlain bytes (so every size of Sizes but
// the largest). Longer messages get every byte of their overhead plus
// edgeBytes of ciphertext at each end, and a stride sample of the middle
// of the ciphertext; see positions and tamperPositions.
const (
	exhaustiveLimit = 4096
	exhaustivePlain = 1000
	edgeBytes       = 64
	middleStride    = 1021
	// sigStride samples a long trailing signature in the tamper check of a
	// long message (see tamperPositions). It is odd, so the sampled
	// positions alternate between one-bit and whole-byte changes, and
	// prime, so they walk through every bit position of the flip.
	sigStride = 61
)

// base is the timestamp the checks protect at; whole seconds, like the wire.
var base = time.Unix(1_700_000_000, 0)

// wide lets the timestamp bytes be tampered with (small changes stay in the
// window) so that authentication, not the window, must catch them.
var wide = core.Window{MaxAge: 48 * time.Hour, MaxSkew: 48 * time.Hour}

// protocolErrors are the sentinels a refusal must wrap.
var protocolErrors = []error{
	core.ErrInvalidProtectedLen, core.ErrTooShortCiphertext, core.ErrInvalidSignature,
	core.ErrNotAuthentic, core.ErrTimestampInFuture, core.ErrTimestampTooOld,
	core.ErrPubKeyNotFound, core.ErrInvalidKey, core.ErrInvalidCommand,
}

// Run runs the conformance checks against s as subtests of t.
func Run(t *testing.T, s core.Suite) {
	t.Helper()
	if s == nil {
		t.Fatal("suitetest: nil suite")
	}
	t.Run("Meta", func(t *testing.T) { testMeta(t, s) })
	t.Run("Hashes", func(t *testing.T) { testHashes(t, s) })
	t.Run("GenerateKey", func(t *testing.T) { testGenerateKey(t, s) })
	t.Run("DeriveKey", func(t *testing.T) { testDeriveKey(t, s) })
	modes := s.Modes()
	if slices.Contains(modes, core.SymKey) {
		t.Run("SK", func(t *testing.T) { testSK(t, s) })
	}
	if slices.Contains(modes, core.PubKey) {
		pk, ok := s.(core.PKSuite)
		if !ok {
			t.Fatalf("suite %s lists PK mode but does not implement core.PKSuite", s.Name())
		}
		t.Run("PK", func(t *testing.T) {
			t.Run("Identity", func(t *testing.T) { testIdentity(t, pk) })
			t.Run("C2Key", func(t *testing.T) { testC2Key(t, pk) })
			t.Run("Signed", func(t *testing.T) { testSigned(t, pk) })
			t.Run("Command", func(t *testing.T) { testCommand(t, pk) })
			t.Run("Redacted", func(t *testing.T) { testRedacted(t, pk) })
			if b, ok := s.(core.IdentityBinder); ok {
				t.Run("Bind", func(t *testing.T) { testBind(t, pk, b) })
			}
		})
	}
}

// BoundIdentity wraps an Identity with the 16-byte client id its PK messages
// carry. Suites find the id through a ClientID() []byte method, the
// convention every suite's ProtectSigned follows.
type BoundIdentity struct {
	core.Identity
	ID []byte
}

// ClientID returns a copy of the bound client id.
func (b BoundIdentity) ClientID() []byte { return bytes.Clone(b.ID) }

func testMeta(t *testing.T, s core.Suite) {
	if s.Name() == "" {
		t.Error("Name() is empty")
	}
	modes := s.Modes()
	if len(modes) == 0 {
		t.Error("Modes() is empty")
	}
	for _, m := range modes {
		if m != core.SymKey && m != core.PubKey {
			t.Errorf("Modes() lists invalid mode %d", m)
		}
	}
	z := s.Sizes()
	if z.Key != core.KeyLen {
		t.Errorf("Sizes().Key = %d, want %d", z.Key, core.KeyLen)
	}
	if slices.Contains(modes, core.SymKey) && z.SKOverhead < core.TimestampLen {
		t.Errorf("Sizes().SKOverhead = %d, less than the timestamp", z.SKOverhead)
	}
	if slices.Contains(modes, core.PubKey) {
		for name, v := range map[string]int{
			"PKOverhead": z.PKOverhead, "IdentityKey": z.IdentityKey, "PublicKey": z.PublicKey,
			"SigningPublic": z.SigningPublic, "Signature": z.Signature, "C2PublicKey": z.C2PublicKey,
			"CommandOverhead": z.CommandOverhead,
		} {
			if v <= 0 {
				t.Errorf("PK suite: Sizes().%s = %d, want > 0", name, v)
			}
		}
		if z.PKOverhead < core.TimestampLen+core.IDLen+z.Signature {
			t.Errorf("Sizes().PKOverhead = %d, less than timestamp + id + signature", z.PKOverhead)
		}
	}
}

func testHashes(t *testing.T, s core.Suite) {
	for _, name := range []string{"a", "client-1", "ünïcödé-名前", string(bytes.Repeat([]byte{'n'}, 255))} {
		id := s.ID(name)
		if len(id) != core.IDLen {
			t.Fatalf("ID(%q) has %d bytes, want %d", name, len(id), core.IDLen)
		}
		if !bytes.Equal(id, s.ID(name)) {
			t.Errorf("ID(%q) is not deterministic", name)
		}
		h := s.HashTopic(name)
		if len(h) != core.IDLen {
			t.Fatalf("HashTopic(%q) has %d bytes, want %d", name, len(h), core.IDLen)
		}
		// Returned slices must be fresh: a caller may keep or modify them.
		h[0] ^= 0xff
		if bytes.Equal(h, s.HashTopic(name)) {
			t.Errorf("HashTopic(%q) returns shared memory", name)
		}
	}
	if bytes.Equal(s.ID("client-1"), s.ID("client-2")) {
		t.Error("ID of different names collide")
	}
	if bytes.Equal(s.HashTopic("a/b"), s.HashTopic("a/c")) {
		t.Error("HashTopic of different topics collide")
	}
}

func testGenerateKey(t *testing.T, s core.Suite) {
	seen := map[string]bool{}
	for range 16 {
		k, err := s.GenerateKey()
		if err != nil {
			t.Fatalf("GenerateKey: %v", err)
		}
		if len(k) != s.Sizes().Key {
			t.Fatalf("GenerateKey returned %d bytes, want %d", len(k), s.Sizes().Key)
		}
		if bytes.Equal(k, make([]byte, len(k))) {
			t.Fatal("GenerateKey returned an all-zero key")
		}
		if seen[string(k)] {
			t.Fatal("GenerateKey repeated a key")
		}
		seen[string(k)] = true
	}
}

func testDeriveKey(t *testing.T, s core.Suite) {
	for _, bad := range []string{"", "short password!", string(bytes.Repeat([]byte{0xff}, 20))} {
		if _, err := s.DeriveKey(bad); !errors.Is(err, core.ErrInvalidPassword) {
			t.Errorf("DeriveKey(%q) = %v, want ErrInvalidPassword", bad, err)
		}
	}
	if testing.Short() {
		t.Log("-short: the password KDF itself is not run (it is slow by design)")
		return
	}
	a, err := s.DeriveKey("suitetest password 1")
	if err != nil {
		t.Fatalf("DeriveKey: %v", err)
	}
	if len(a) != core.KeyLen {
		t.Fatalf("DeriveKey returned %d bytes, want %d", len(a), core.KeyLen)
	}
	b, err := s.DeriveKey("suitetest password 2")
	if err != nil {
		t.Fatalf("DeriveKey: %v", err)
	}
	if bytes.Equal(a, b) {
		t.Error("DeriveKey gives the same key for different passwords")
	}
	a2, err := s.DeriveKey("suitetest password 1")
	if err != nil {
		t.Fatalf("DeriveKey: %v", err)
	}
	if !bytes.Equal(a, a2) {
		t.Error("DeriveKey is not deterministic")
	}
}

// codec abstracts the three message kinds (SK message, PK signed message,
// PK command) so the generic checks are written once.
type codec struct {
	overhead int
	// sig is the length of the signature that ends every message of this
	// codec (0: none); only the tamper check of long messages uses it.
	sig       int
	protect   func(msg []byte, ts time.Time) ([]byte, error)
	unprotect func(p []byte, now time.Time, w core.Window) ([]byte, error)
}

func testSK(t *testing.T, s core.Suite) {
	key := mustKey(t, s)
	c := codec{
		overhead:  s.Sizes().SKOverhead,
		protect:   func(m []byte, ts time.Time) ([]byte, error) { return s.Protect(key, m, ts) },
		unprotect: func(p []byte, now time.Time, w core.Window) ([]byte, error) { return s.Unprotect(key, p, now, w) },
	}
	runCodec(t, c)
	t.Run("WrongKey", func(t *testing.T) {
		other := mustKey(t, s)
		p, err := s.Protect(key, []byte("wrong key check"), base)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Unprotect(other, p, base, wide)
		if !errors.Is(err, core.ErrNotAuthentic) {
			t.Errorf("Unprotect with another key = %v, want ErrNotAuthentic", err)
		}
		noKeyIn(t, err, key, other)
	})
	t.Run("Concurrent", func(t *testing.T) {
		keys := [][]byte{key, mustKey(t, s), mustKey(t, s)}
		concurrently(t, func(g, i int) error {
			k := keys[(g+i)%len(keys)]
			msg := bytes.Repeat([]byte{byte(g), byte(i)}, 1+(g*37+i*101)%1500)
			p, err := s.Protect(k, msg, base)
			if err != nil {
				return err
			}
			out, err := s.Unprotect(k, p, base, wide)
			if err != nil {
				return err
			}
			if !bytes.Equal(out, msg) {
				return errors.New("round trip changed the message")
			}
			return nil
		})
	})
	t.Run("BadKeyLength", func(t *testing.T) {
		for _, n := range []int{0, 16, core.KeyLen - 1, core.KeyLen + 1} {
			bad := bytes.Repeat([]byte{0xa5}, n)
			_, err := s.Protect(bad, []byte("x"), base)
			if !errors.Is(err, core.ErrInvalidKey) {
				t.Errorf("Protect with %d-byte key = %v, want ErrInvalidKey", n, err)
			}
			noKeyIn(t, err, bad)
			if _, err := s.Unprotect(make([]byte, n), make([]byte, 64), base, wide); err == nil {
				t.Errorf("Unprotect with %d-byte key succeeded", n)
			}
		}
	})
}

func runCodec(t *testing.T, c codec) {
	t.Run("RoundTrip", func(t *testing.T) {
		for _, n := range Sizes {
			t.Run(fmt.Sprintf("size=%d", n), func(t *testing.T) {
				msg := randBytes(t, n)
				orig := bytes.Clone(msg)
				p, err := c.protect(msg, base)
				if err != nil {
					t.Fatalf("protect: %v", err)
				}
				if !bytes.Equal(msg, orig) {
					t.Fatal("protect modified its input")
				}
				if len(p) != n+c.overhead {
					t.Fatalf("protected length %d, want %d + overhead %d", len(p), n, c.overhead)
				}
				pc := bytes.Clone(p)
				out, err := c.unprotect(p, base, core.DefaultWindow())
				if n == 0 && (errors.Is(err, core.ErrTooShortCiphertext) || errors.Is(err, core.ErrInvalidProtectedLen)) {
					// The reference refuses empty SK payloads (and so
					// commands); a suite may keep that rule, but only as a
					// length error.
					t.Logf("suite refuses an empty payload: %v", err)
					return
				}
				if err != nil {
					t.Fatalf("unprotect: %v", err)
				}
				if !bytes.Equal(out, msg) {
					t.Fatal("round trip changed the message")
				}
				if !bytes.Equal(p, pc) {
					t.Fatal("unprotect modified its input")
				}
			})
		}
	})
	t.Run("Tamper", func(t *testing.T) {
		for _, n := range Sizes {
			t.Run(fmt.Sprintf("size=%d", n), func(t *testing.T) {
				p, err := c.protect(randBytes(t, n), base)
				if err != nil {
					t.Fatal(err)
				}
				q := bytes.Clone(p)
				for _, pos := range tamperPositions(len(p), c.overhead, c.sig) {
					// One bit (which bit varies with the position) or, at
					// odd positions, the whole byte.
					flip := byte(1) << (pos % 8)
					if pos%2 == 1 {
						flip = 0xff
					}
					q[pos] ^= flip
					if _, err := c.unprotect(q, base, wide); !isProtocolError(err) {
						t.Fatalf("byte %d of %d xored with %#x: got %v, want a protocol error", pos, len(p), flip, err)
					}
					q[pos] ^= flip
				}
			})
		}
	})
	t.Run("Truncate", func(t *testing.T) {
		for _, n := range Sizes {
			t.Run(fmt.Sprintf("size=%d", n), func(t *testing.T) {
				p, err := c.protect(randBytes(t, n), base)
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range positions(len(p), c.overhead) {
					if _, err := c.unprotect(p[:l:l], base, wide); !isProtocolError(err) {
						t.Fatalf("truncated to %d of %d bytes: got %v, want a protocol error", l, len(p), err)
					}
				}
				if _, err := c.unprotect(append(bytes.Clone(p), 0), base, wide); !isProtocolError(err) {
					t.Fatalf("one byte appended: got %v, want a protocol error", err)
				}
			})
		}
	})
	t.Run("Window", func(t *testing.T) {
		msg := []byte("timestamp window check")
		p, err := c.protect(msg, base)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []core.Window{core.DefaultWindow(), {MaxAge: time.Minute, MaxSkew: 30 * time.Second}} {
			cases := []struct {
				name string
				now  time.Time
				want error
			}{
				{"exactly MaxAge old", base.Add(w.MaxAge), nil},
				{"MaxAge+1s old", base.Add(w.MaxAge + time.Second), core.ErrTimestampTooOld},
				{"exactly MaxSkew ahead", base.Add(-w.MaxSkew), nil},
				{"MaxSkew+1s ahead", base.Add(-w.MaxSkew - time.Second), core.ErrTimestampInFuture},
			}
			for _, tc := range cases {
				t.Run(fmt.Sprintf("age=%v,skew=%v/%s", w.MaxAge, w.MaxSkew, tc.name), func(t *testing.T) {
					out, err := c.unprotect(p, tc.now, w)
					if tc.want == nil {
						if err != nil || !bytes.Equal(out, msg) {
							t.Fatalf("got (%q, %v), want the message", out, err)
						}
						return
					}
					if !errors.Is(err, tc.want) {
						t.Fatalf("got %v, want %v", err, tc.want)
					}
				})
			}
		}
		t.Run("TimestampBeforeAuthentication", func(t *testing.T) {
			q := bytes.Clone(p)
			q[len(q)-1] ^= 1
			if _, err := c.unprotect(q, base.Add(11*time.Minute), core.DefaultWindow()); !errors.Is(err, core.ErrTimestampTooOld) {
				t.Fatalf("tampered and too old: got %v, want ErrTimestampTooOld (window is checked first)", err)
			}
		})
	})
}

func testIdentity(t *testing.T, s core.PKSuite) {
	z := s.Sizes()
	id, err := s.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	priv := id.Bytes()
	if len(priv) != z.IdentityKey {
		t.Errorf("Identity.Bytes() has %d bytes, want Sizes().IdentityKey = %d", len(priv), z.IdentityKey)
	}
	priv[0] ^= 0xff
	if bytes.Equal(priv, id.Bytes()) {
		t.Error("Identity.Bytes() returns shared memory, want a copy")
	}
	priv[0] ^= 0xff
	pub := id.PublicKey()
	if len(pub) != z.PublicKey {
		t.Errorf("PublicKey() has %d bytes, want %d", len(pub), z.PublicKey)
	}
	spub := id.SigningPublicKey()
	if len(spub) != z.SigningPublic {
		t.Errorf("SigningPublicKey() has %d bytes, want %d", len(spub), z.SigningPublic)
	}
	if err := s.CheckPublicKey(pub); err != nil {
		t.Errorf("CheckPublicKey(own public key): %v", err)
	}
	if err := s.CheckPublicKey(pub[:len(pub)-1]); err == nil {
		t.Error("CheckPublicKey accepted a truncated key")
	}
	if got, err := s.SigningPublicKey(pub); err != nil || !bytes.Equal(got, spub) {
		t.Errorf("SigningPublicKey(PublicKey()) = %x, %v; want %x", got, err, spub)
	}

	back, err := s.ParseIdentity(id.Bytes())
	if err != nil {
		t.Fatalf("ParseIdentity(Bytes()): %v", err)
	}
	if !bytes.Equal(back.Bytes(), id.Bytes()) || !bytes.Equal(back.PublicKey(), pub) ||
		!bytes.Equal(back.SigningPublicKey(), spub) {
		t.Error("ParseIdentity(Bytes()) does not round-trip")
	}
	for _, n := range []int{0, 1, z.IdentityKey - 1, z.IdentityKey + 1} {
		if _, err := s.ParseIdentity(make([]byte, n)); err == nil {
			t.Errorf("ParseIdentity accepted %d bytes", n)
		}
	}

	other, err := s.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other.Bytes(), id.Bytes()) || bytes.Equal(other.PublicKey(), pub) {
		t.Error("GenerateIdentity repeated a key")
	}

	seed := randBytes(t, core.KeyLen)
	a, err := s.IdentityFromSeed(seed)
	if err != nil {
		t.Fatalf("IdentityFromSeed: %v", err)
	}
	b, err := s.IdentityFromSeed(bytes.Clone(seed))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) || !bytes.Equal(a.PublicKey(), b.PublicKey()) {
		t.Error("IdentityFromSeed is not deterministic")
	}
	seed[0] ^= 1
	c, err := s.IdentityFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.PublicKey(), c.PublicKey()) {
		t.Error("IdentityFromSeed gives the same key for different seeds")
	}
	for _, n := range []int{0, core.KeyLen - 1, core.KeyLen + 1} {
		if _, err := s.IdentityFromSeed(make([]byte, n)); err == nil {
			t.Errorf("IdentityFromSeed accepted a %d-byte seed", n)
		}
	}
}

func testC2Key(t *testing.T, s core.PKSuite) {
	k, err := s.GenerateC2Key()
	if err != nil {
		t.Fatal(err)
	}
	pub := k.PublicKey()
	if len(pub) != s.Sizes().C2PublicKey {
		t.Errorf("C2Key.PublicKey() has %d bytes, want %d", len(pub), s.Sizes().C2PublicKey)
	}
	if err := s.CheckC2PublicKey(pub); err != nil {
		t.Errorf("CheckC2PublicKey(own public key): %v", err)
	}
	for _, n := range []int{0, len(pub) - 1, len(pub) + 1} {
		if err := s.CheckC2PublicKey(make([]byte, n)); err == nil {
			t.Errorf("CheckC2PublicKey accepted %d bytes", n)
		}
	}
	if err := s.CheckC2PublicKey(make([]byte, len(pub))); err == nil {
		t.Error("CheckC2PublicKey accepted an all-zero key")
	}
	priv := k.Bytes()
	priv[0] ^= 0xff
	if bytes.Equal(priv, k.Bytes()) {
		t.Error("C2Key.Bytes() returns shared memory, want a copy")
	}
	back, err := s.ParseC2Key(k.Bytes())
	if err != nil {
		t.Fatalf("ParseC2Key(Bytes()): %v", err)
	}
	if !bytes.Equal(back.PublicKey(), pub) || !bytes.Equal(back.Bytes(), k.Bytes()) {
		t.Error("ParseC2Key(Bytes()) does not round-trip")
	}
	if _, err := s.ParseC2Key(make([]byte, 3)); err == nil {
		t.Error("ParseC2Key accepted 3 bytes")
	}
	k2, err := s.GenerateC2Key()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(k2.PublicKey(), pub) {
		t.Error("GenerateC2Key repeated a key")
	}
}

func testSigned(t *testing.T, s core.PKSuite) {
	id, err := s.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	cid := s.ID("suitetest-sender")
	bound := BoundIdentity{Identity: id, ID: cid}
	key := mustKey(t, s)
	var lookups atomic.Int64
	signer := func(x []byte) ([]byte, error) {
		lookups.Add(1)
		if bytes.Equal(x, cid) {
			return id.SigningPublicKey(), nil
		}
		return nil, fmt.Errorf("%w: %x", core.ErrPubKeyNotFound, x)
	}
	c := codec{
		overhead: s.Sizes().PKOverhead,
		sig:      s.Sizes().Signature, // every PK layout ends with the signature
		protect: func(m []byte, ts time.Time) ([]byte, error) {
			return s.ProtectSigned(bound, key, m, ts)
		},
		unprotect: func(p []byte, now time.Time, w core.Window) ([]byte, error) {
			plain, sender, err := s.UnprotectSigned(key, p, now, w, signer)
			if err == nil && !bytes.Equal(sender, cid) {
				return nil, fmt.Errorf("suitetest: sender %x, want %x", sender, cid)
			}
			return plain, err
		},
	}
	runCodec(t, c)
	if lookups.Load() == 0 {
		t.Error("UnprotectSigned never called the signer lookup")
	}

	msg := []byte("signed message check")
	p, err := s.ProtectSigned(bound, key, msg, base)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("SenderID", func(t *testing.T) {
		got, err := s.SenderID(p)
		if err != nil || !bytes.Equal(got, cid) {
			t.Fatalf("SenderID = %x, %v; want %x", got, err, cid)
		}
		if _, err := s.SenderID(p[:core.TimestampLen+core.IDLen-1]); err == nil {
			t.Error("SenderID accepted a message shorter than timestamp + id")
		}
	})
	t.Run("WrongTopicKey", func(t *testing.T) {
		if _, _, err := s.UnprotectSigned(mustKey(t, s), p, base, wide, signer); !errors.Is(err, core.ErrNotAuthentic) {
			t.Fatalf("got %v, want ErrNotAuthentic", err)
		}
	})
	t.Run("WrongSigner", func(t *testing.T) {
		other, err := s.GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		wrong := func([]byte) ([]byte, error) { return other.SigningPublicKey(), nil }
		if _, _, err := s.UnprotectSigned(key, p, base, wide, wrong); !errors.Is(err, core.ErrInvalidSignature) {
			t.Fatalf("got %v, want ErrInvalidSignature", err)
		}
		// A message signed by another key under the right sender id.
		forged, err := s.ProtectSigned(BoundIdentity{Identity: other, ID: cid}, key, msg, base)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.UnprotectSigned(key, forged, base, wide, signer); !errors.Is(err, core.ErrInvalidSignature) {
			t.Fatalf("forged sender: got %v, want ErrInvalidSignature", err)
		}
	})
	t.Run("UnknownSigner", func(t *testing.T) {
		none := func(x []byte) ([]byte, error) { return nil, fmt.Errorf("%w: %x", core.ErrPubKeyNotFound, x) }
		if _, _, err := s.UnprotectSigned(key, p, base, wide, none); !errors.Is(err, core.ErrPubKeyNotFound) {
			t.Fatalf("got %v, want ErrPubKeyNotFound", err)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		concurrently(t, func(g, i int) error {
			msg := bytes.Repeat([]byte{byte(g), byte(i)}, 1+(g*37+i*101)%1500)
			p, err := s.ProtectSigned(bound, key, msg, base)
			if err != nil {
				return err
			}
			out, _, err := s.UnprotectSigned(key, p, base, wide, signer)
			if err != nil {
				return err
			}
			if !bytes.Equal(out, msg) {
				return errors.New("round trip changed the message")
			}
			return nil
		})
	})
	t.Run("UnboundIdentity", func(t *testing.T) {
		if _, err := s.ProtectSigned(id, key, msg, base); !errors.Is(err, core.ErrInvalidKey) {
			t.Fatalf("ProtectSigned with an identity bound to no client id: got %v, want ErrInvalidKey", err)
		}
	})
}

// testBind checks core.IdentityBinder: the bound copy carries the id and
// the same keys, a wrapper (any other core.Identity) is re-parsed from its
// Bytes, and a nil identity or a malformed id is an error, never a panic.
func testBind(t *testing.T, s core.PKSuite, b core.IdentityBinder) {
	id, err := s.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	cid := s.ID("suitetest-bind")
	for name, in := range map[string]core.Identity{
		"own":     id,
		"wrapper": BoundIdentity{Identity: id, ID: s.ID("another")},
	} {
		bound, err := b.BindIdentity(in, cid)
		if err != nil {
			t.Fatalf("%s: BindIdentity: %v", name, err)
		}
		if !bytes.Equal(bound.ClientID(), cid) {
			t.Fatalf("%s: bound id %x, want %x", name, bound.ClientID(), cid)
		}
		if !bytes.Equal(bound.PublicKey(), id.PublicKey()) {
			t.Fatalf("%s: binding changed the public key", name)
		}
	}
	if own, ok := id.(core.ClientIdentity); ok && own.ClientID() != nil {
		t.Fatal("BindIdentity bound the original identity instead of a copy")
	}
	if _, err := b.BindIdentity(nil, cid); !errors.Is(err, core.ErrInvalidKey) {
		t.Fatalf("nil identity: got %v, want ErrInvalidKey", err)
	}
	if _, err := b.BindIdentity(id, cid[:core.IDLen-1]); err == nil {
		t.Fatal("a 15-byte client id was accepted")
	}
}

func testCommand(t *testing.T, s core.PKSuite) {
	id, err := s.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := s.GenerateC2Key()
	if err != nil {
		t.Fatal(err)
	}
	// A command signed by C2 (pq) ends with the signature; a command in the
	// SK layout (standard, fips) has CommandOverhead == SKOverhead.
	sig := 0
	if sz := s.Sizes(); sz.CommandOverhead >= sz.SKOverhead+sz.Signature {
		sig = sz.Signature
	}
	c := codec{
		overhead: s.Sizes().CommandOverhead,
		sig:      sig,
		protect: func(m []byte, ts time.Time) ([]byte, error) {
			return s.ProtectCommand(c2, id.PublicKey(), m, ts)
		},
		unprotect: func(p []byte, now time.Time, w core.Window) ([]byte, error) {
			return s.UnprotectCommand(id, c2.PublicKey(), p, now, w)
		},
	}
	runCodec(t, c)

	cmd := []byte{0x01}
	p, err := s.ProtectCommand(c2, id.PublicKey(), cmd, base)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ParsedKeys", func(t *testing.T) {
		id2, err := s.ParseIdentity(id.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		c2b, err := s.ParseC2Key(c2.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		q, err := s.ProtectCommand(c2b, id2.PublicKey(), cmd, base)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := s.UnprotectCommand(id2, c2b.PublicKey(), q, base, wide); err != nil || !bytes.Equal(out, cmd) {
			t.Fatalf("parsed keys: got (%x, %v)", out, err)
		}
	})
	t.Run("WrongIdentity", func(t *testing.T) {
		other, err := s.GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.UnprotectCommand(other, c2.PublicKey(), p, base, wide); !errors.Is(err, core.ErrNotAuthentic) {
			t.Fatalf("got %v, want ErrNotAuthentic", err)
		}
	})
	t.Run("WrongC2Key", func(t *testing.T) {
		other, err := s.GenerateC2Key()
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.UnprotectCommand(id, other.PublicKey(), p, base, wide)
		if !errors.Is(err, core.ErrNotAuthentic) && !errors.Is(err, core.ErrInvalidSignature) {
			t.Fatalf("got %v, want ErrNotAuthentic or ErrInvalidSignature", err)
		}
		q, err := s.ProtectCommand(other, id.PublicKey(), cmd, base)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.UnprotectCommand(id, c2.PublicKey(), q, base, wide)
		if !errors.Is(err, core.ErrNotAuthentic) && !errors.Is(err, core.ErrInvalidSignature) {
			t.Fatalf("command from another C2 key: got %v, want ErrNotAuthentic or ErrInvalidSignature", err)
		}
	})
	t.Run("BadClientKey", func(t *testing.T) {
		pub := id.PublicKey()
		if _, err := s.ProtectCommand(c2, pub[:len(pub)-1], cmd, base); err == nil {
			t.Error("ProtectCommand accepted a truncated client key")
		}
		if _, err := s.UnprotectCommand(id, make([]byte, 5), p, base, wide); err == nil {
			t.Error("UnprotectCommand accepted a 5-byte C2 key")
		}
	})
}

// positions lists the byte positions (or prefix lengths) to try on a
// protected message of n bytes: all of them for short messages (see
// exhaustiveLimit), else the first and last overhead+edgeBytes bytes
// (header, tag, signature and the ends of the ciphertext) and a stride
// sample of the middle.
func positions(n, overhead int) []int {
	if n <= exhaustiveLimit || n-overhead <= exhaustivePlain {
		return allPositions(n)
	}
	edge := overhead + edgeBytes
	var ps []int
	for i := 0; i < n; i++ {
		if i < edge || i >= n-edge || i%middleStride == 0 {
			ps = append(ps, i)
		}
	}
	return ps
}

// tamperPositions lists the byte positions the tamper check changes. It is
// positions, except in a long message (beyond the exhaustive limits: only
// the largest of Sizes) that ends with a signature longer than 2*edgeBytes
// (pq's 3309-byte ML-DSA-65 ones). Each tampered position there costs a
// full signature verification over the whole message, and positions
// tries all of the overhead at both ends (about 6,900 positions for a pq
// signed message, 9,000 for a pq command): 80 s of the pq suite's run under
// -race. So in such a message:
//   - every byte that is neither ciphertext nor signature is still tried,
//     wherever it sits: the suite's layout is not known here, so the whole
//     non-signature overhead (overhead-sig bytes) counts both as header
//     (at the start) and as a tag placed before the signature;
//   - the first and last edgeBytes of the ciphertext, of the signature and
//     of those head and tail regions are tried, as in positions;
//   - the middle of the signature is sampled every sigStride bytes, the
//     middle of the ciphertext every middleStride bytes.
//
// Shorter messages, and signatures of at most 2*edgeBytes bytes (Ed25519,
// ECDSA P-256), keep every position of positions; truncation keeps
// positions everywhere (measured under a second: a truncated message ends
// in bytes that do not decode as a signature, refused before hashing).
func tamperPositions(n, overhead, sig int) []int {
	if sig <= 2*edgeBytes || n <= exhaustiveLimit || n-overhead <= exhaustivePlain {
		return positions(n, overhead)
	}
	other := overhead - sig // header (and a tag) bytes, wherever they sit
	sigStart := n - sig
	head := other + edgeBytes            // header + first ciphertext bytes
	tail := sigStart - other - edgeBytes // last ciphertext bytes + a tag
	var ps []int
	for i := 0; i < n; i++ {
		keep := false
		switch off := i - sigStart; {
		case i < head, i >= tail && i < sigStart:
			keep = true
		case off >= 0:
			keep = off < edgeBytes || i >= n-edgeBytes || off%sigStride == 0
		default:
			keep = i%middleStride == 0
		}
		if keep {
			ps = append(ps, i)
		}
	}
	return ps
}

func allPositions(n int) []int {
	ps := make([]int, n)
	for i := range ps {
		ps[i] = i
	}
	return ps
}

// concurrently runs f(goroutine, iteration) from several goroutines at
// once (suites must be safe for concurrent use; run under -race).
func concurrently(t *testing.T, f func(g, i int) error) {
	t.Helper()
	const goroutines, iterations = 4, 12
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*iterations)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range iterations {
				if err := f(g, i); err != nil {
					errs <- fmt.Errorf("goroutine %d, iteration %d: %w", g, i, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// noKeyIn fails if an error message shows any of the keys in hex.
func noKeyIn(t *testing.T, err error, keys ...[]byte) {
	t.Helper()
	if err == nil {
		return
	}
	msg := strings.ToLower(err.Error())
	for _, k := range keys {
		if len(k) >= 8 && strings.Contains(msg, hex.EncodeToString(k[:8])) {
			t.Errorf("error message %q contains key bytes", err)
		}
	}
}

func isProtocolError(err error) bool {
	if err == nil {
		return false
	}
	for _, e := range protocolErrors {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func mustKey(t *testing.T, s core.Suite) []byte {
	t.Helper()
	k, err := s.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// testRedacted checks that no fmt verb prints the private key bytes of an
// identity or a C2 key, which must never reach a log line or an error:
// every verb prints "<suite>.Identity(redacted)" / "<suite>.C2Key(redacted)".
func testRedacted(t *testing.T, s core.PKSuite) {
	id, err := s.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := s.GenerateC2Key()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		name string
		v    any
		priv []byte
		want string
	}{
		{"identity", id, id.Bytes(), s.Name() + ".Identity(redacted)"},
		{"c2 key", c2, c2.Bytes(), s.Name() + ".C2Key(redacted)"},
	} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
			got := fmt.Sprintf(verb, k.v)
			if got != k.want {
				t.Errorf("%s printed with %s = %q, want %q", k.name, verb, got, k.want)
			}
			if strings.Contains(strings.ToLower(got), hex.EncodeToString(k.priv[:8])) {
				t.Errorf("%s printed with %s contains its private key", k.name, verb)
			}
		}
	}
}
