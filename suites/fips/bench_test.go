package fips_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/fips"
)

var benchSizes = []int{64, 1024, 64 * 1024}

// The suite benchmarks and their same-run baselines. Ratios to compare:
//
//	SK Protect   / BaselineGCMSeal (and /BaselineGCMSealWithSetup: the suite
//	               builds the AES key schedule per call)
//	PK Protect   / (BaselineGCMSeal + BaselineECDSASign)
//	PK Unprotect / (BaselineGCMOpen + BaselineECDSAVerify)

func BenchmarkProtectSK(b *testing.B) {
	s := fips.New()
	key := seq(0, 32)
	for _, n := range benchSizes {
		msg := make([]byte, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Protect(key, msg, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnprotectSK(b *testing.B) {
	s := fips.New()
	key := seq(0, 32)
	for _, n := range benchSizes {
		p, err := s.Protect(key, make([]byte, n), t0)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Unprotect(key, p, t0, core.DefaultWindow()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkProtectPK(b *testing.B) {
	s := fips.New()
	id := boundIdentity(b, seq(0x40, 32), "alice")
	key := seq(0x20, 32)
	for _, n := range benchSizes {
		msg := make([]byte, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.ProtectSigned(id, key, msg, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnprotectPK(b *testing.B) {
	s := fips.New()
	id := boundIdentity(b, seq(0x40, 32), "alice")
	lookup := signers(id)
	key := seq(0x20, 32)
	for _, n := range benchSizes {
		p, err := s.ProtectSigned(id, key, make([]byte, n), t0)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.UnprotectSigned(key, p, t0, core.DefaultWindow(), lookup); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func newBenchAEAD(b *testing.B) cipher.AEAD {
	blk, err := aes.NewCipher(seq(0, 32))
	if err != nil {
		b.Fatal(err)
	}
	g, err := cipher.NewGCMWithRandomNonce(blk)
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// BenchmarkBaselineGCMSeal is the bare AEAD: AES-256-GCM with a random
// nonce, key schedule done once, sealing into a reused buffer.
func BenchmarkBaselineGCMSeal(b *testing.B) {
	g := newBenchAEAD(b)
	ad := make([]byte, 8)
	for _, n := range benchSizes {
		msg := make([]byte, n)
		buf := make([]byte, 0, n+g.Overhead())
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				g.Seal(buf[:0], nil, msg, ad)
			}
		})
	}
}

// BenchmarkBaselineGCMSealWithSetup adds the per-call key schedule that the
// suite pays (keys arrive as bytes on every call).
func BenchmarkBaselineGCMSealWithSetup(b *testing.B) {
	key, ad := seq(0, 32), make([]byte, 8)
	for _, n := range benchSizes {
		msg := make([]byte, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				blk, _ := aes.NewCipher(key)
				g, _ := cipher.NewGCMWithRandomNonce(blk)
				g.Seal(nil, nil, msg, ad)
			}
		})
	}
}

func BenchmarkBaselineGCMOpen(b *testing.B) {
	g := newBenchAEAD(b)
	ad := make([]byte, 8)
	for _, n := range benchSizes {
		box := g.Seal(nil, nil, make([]byte, n), ad)
		buf := make([]byte, 0, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := g.Open(buf[:0], nil, box, ad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBaselineECDSASign(b *testing.B) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	d := sha256.Sum256([]byte("message"))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ecdsa.Sign(rand.Reader, priv, d[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBaselineECDSAVerify(b *testing.B) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	d := sha256.Sum256([]byte("message"))
	r, s, err := ecdsa.Sign(rand.Reader, priv, d[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !ecdsa.Verify(&priv.PublicKey, d[:], r, s) {
			b.Fatal("verify failed")
		}
	}
}
