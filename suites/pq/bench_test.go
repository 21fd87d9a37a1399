package pq_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/cloudflare/circl/kem/mlkem/mlkem768"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"github.com/e4c2/e4c2/suites/pq"
)

var benchSizes = []int{64, 1024, 64 * 1024}

func BenchmarkProtectSigned(b *testing.B) {
	s := pq.New()
	id := identity(b, 1, "alice")
	key := seed(7)
	for _, n := range benchSizes {
		msg := make([]byte, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.ProtectSigned(id, key, msg, ts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnprotectSigned(b *testing.B) {
	s := pq.New()
	id := identity(b, 1, "alice")
	key := seed(7)
	lookup := signers(id)
	for _, n := range benchSizes {
		p, err := s.ProtectSigned(id, key, make([]byte, n), ts)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.UnprotectSigned(key, p, ts, win, lookup); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// setTopicKey is the most frequent command: code, 32-byte key, topic hash.
var setTopicKey = append(append([]byte{0x03}, bytes.Repeat([]byte{9}, 32)...), make([]byte, 16)...)

func BenchmarkProtectCommand(b *testing.B) {
	s := pq.New()
	id := identity(b, 1, "alice")
	c2 := c2key(b, 9)
	pub := id.PublicKey()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.ProtectCommand(c2, pub, setTopicKey, ts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnprotectCommand(b *testing.B) {
	s := pq.New()
	id := identity(b, 1, "alice")
	c2 := c2key(b, 9)
	p, err := s.ProtectCommand(c2, id.PublicKey(), setTopicKey, ts)
	if err != nil {
		b.Fatal(err)
	}
	c2Pub := c2.PublicKey()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.UnprotectCommand(id, c2Pub, p, ts, win); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIdentityFromSeed(b *testing.B) {
	s := pq.New()
	sd := seed(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.IdentityFromSeed(sd); err != nil {
			b.Fatal(err)
		}
	}
}

// Baselines: the bare CIRCL primitives, same run, to read the suite's
// overhead as a ratio.

func BenchmarkBaselineMLDSA65Sign(b *testing.B) {
	_, sk, _ := mldsa65.GenerateKey(rand.Reader)
	msg := make([]byte, 64+pq.PKOverhead-pq.SignatureSize)
	sig := make([]byte, mldsa65.SignatureSize)
	b.ReportAllocs()
	for b.Loop() {
		if err := mldsa65.SignTo(sk, msg, nil, true, sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBaselineMLDSA65Verify(b *testing.B) {
	pk, sk, _ := mldsa65.GenerateKey(rand.Reader)
	msg := make([]byte, 64+pq.PKOverhead-pq.SignatureSize)
	sig := make([]byte, mldsa65.SignatureSize)
	_ = mldsa65.SignTo(sk, msg, nil, true, sig)
	b.ReportAllocs()
	for b.Loop() {
		if !mldsa65.Verify(pk, msg, nil, sig) {
			b.Fatal("verify failed")
		}
	}
}

// BenchmarkBaselineMLDSA65UnpackPublic is the cost of decoding a signer
// key (matrix expansion), which UnprotectSigned pays per message because
// the signer lookup returns bytes.
func BenchmarkBaselineMLDSA65UnpackPublic(b *testing.B) {
	pk, _, _ := mldsa65.GenerateKey(rand.Reader)
	buf := pk.Bytes()
	b.ReportAllocs()
	for b.Loop() {
		var k mldsa65.PublicKey
		if err := k.UnmarshalBinary(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBaselineMLKEM768Encapsulate(b *testing.B) {
	pk, _, _ := mlkem768.GenerateKeyPair(rand.Reader)
	ct := make([]byte, mlkem768.CiphertextSize)
	ss := make([]byte, mlkem768.SharedKeySize)
	b.ReportAllocs()
	for b.Loop() {
		pk.EncapsulateTo(ct, ss, nil)
	}
}

func BenchmarkBaselineMLKEM768Decapsulate(b *testing.B) {
	pk, sk, _ := mlkem768.GenerateKeyPair(rand.Reader)
	ct := make([]byte, mlkem768.CiphertextSize)
	ss := make([]byte, mlkem768.SharedKeySize)
	pk.EncapsulateTo(ct, ss, nil)
	b.ReportAllocs()
	for b.Loop() {
		sk.DecapsulateTo(ss, ct)
	}
}

// BenchmarkBaselineProtect1K is the symmetric layer alone at 1 KiB.
func BenchmarkBaselineProtect1K(b *testing.B) {
	s := pq.New()
	key := seed(7)
	msg := make([]byte, 1024)
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Protect(key, msg, ts); err != nil {
			b.Fatal(err)
		}
	}
}
