package siv

import (
	"crypto/cipher"
	"encoding/binary"
)

// This file runs the AES-SIV counter mode through the standard library's
// AES-GCM, the only crypto/cipher mode that takes a caller-chosen counter
// and writes into caller memory without allocating (cipher.NewCTR
// allocates its state on every call; a hand-written counter loop pays one
// cipher.Block call per block, about 2.5 times the assembly CTR).
//
// GCM encrypts block i with E(inc32^(i+1)(J0)), where for a 16-byte nonce
// N, J0 = GHASH_H(N || 0^64 || [128]_64) = N*H^2 + L*H (H = E(0^128), L the
// length block, products in GCM's GF(2^128)). SIV wants E(Q + i) with the
// 128-bit counter Q (RFC 5297 clears bit 31 so that a 32-bit counter never
// carries for messages under 2^31 blocks: inc32 and the full increment
// agree). Choosing J0 = Q with its low word minus one, the nonce is
//
//	N = (J0 + L*H) * H^-2 = J0*H^-2 + L*H^-1.
//
// H^-1 and H^-2 depend only on the key: they are computed once per key (a
// constant-time exponentiation), with H^-2 spread into a 4-bit window
// table so that the per-message product needs 32 table reads indexed by
// nibbles of J0, which is public (it is the SIV, sent in clear): the
// access pattern reveals nothing about the key. GCM's own tag over the
// ciphertext is discarded and wiped.

// gf is an element of GF(2^128) in GCM's bit order: hi holds bytes 0..7
// big-endian, and the most significant bit of hi is the coefficient of x^0.
type gf struct{ hi, lo uint64 }

// gfR is the reduction constant x^128 = x^7 + x^2 + x + 1, reflected.
const gfR = 0xe100000000000000

func gfLoad(b []byte) gf {
	return gf{binary.BigEndian.Uint64(b[0:8]), binary.BigEndian.Uint64(b[8:16])}
}

func (a gf) put(b []byte) {
	binary.BigEndian.PutUint64(b[0:8], a.hi)
	binary.BigEndian.PutUint64(b[8:16], a.lo)
}

// mulX returns a*x (a right shift in this bit order), in constant time.
func (a gf) mulX() gf {
	r := -(a.lo & 1)
	return gf{a.hi>>1 ^ gfR&r, a.lo>>1 | a.hi<<63}
}

// gfMul returns a*b in constant time (SP 800-38D algorithm 1 with masks).
func gfMul(a, b gf) gf {
	var z gf
	v := b
	for i := 0; i < 128; i++ {
		var bit uint64
		if i < 64 {
			bit = a.hi >> (63 - i) & 1
		} else {
			bit = a.lo >> (127 - i) & 1
		}
		m := -bit
		z.hi ^= v.hi & m
		z.lo ^= v.lo & m
		v = v.mulX()
	}
	return z
}

// gfInv returns a^-1 = a^(2^128-2) for a != 0, in constant time.
func gfInv(a gf) gf {
	t := a // a^(2^1-1)
	for i := 1; i < 127; i++ {
		t = gfMul(gfMul(t, t), a) // a^(2^(i+1)-1)
	}
	return gfMul(t, t)
}

// gcmCTR produces SIV keystream with AES-GCM as described above.
type gcmCTR struct {
	aead cipher.AEAD
	// win[j][n] = (n placed at nibble j of a multiplier) * H^-2.
	win [32][16]gf
	// lh is L*H^-1 for the 16-byte nonce length block L.
	lh gf
}

// newGCMCTR sets up the engine for the CTR key of c; h is E(0^128) under
// that key. It returns nil if GCM is unavailable (FIPS 140-only mode
// refuses 16-byte nonces), and the caller keeps the block-by-block CTR.
func newGCMCTR(ctr cipher.Block, h gf) *gcmCTR {
	aead, err := cipher.NewGCMWithNonceSize(ctr, 16)
	if err != nil {
		return nil
	}
	e := &gcmCTR{aead: aead}
	hinv := gfInv(h)
	hinv2 := gfMul(hinv, hinv)
	e.lh = gfMul(gf{0, 128}, hinv)
	// v[i] = hinv2 * x^i is the contribution of multiplier bit i.
	var v [128]gf
	v[0] = hinv2
	for i := 1; i < 128; i++ {
		v[i] = v[i-1].mulX()
	}
	for j := 0; j < 32; j++ {
		for n := 0; n < 16; n++ {
			var z gf
			for b := 0; b < 4; b++ {
				m := -uint64(n >> (3 - b) & 1)
				z.hi ^= v[4*j+b].hi & m
				z.lo ^= v[4*j+b].lo & m
			}
			e.win[j][n] = z
		}
	}
	return e
}

// nonce writes the GCM nonce whose first keystream block is E(q).
func (e *gcmCTR) nonce(dst []byte, q *[blockSize]byte) {
	j0 := gfLoad(q[:])
	// Low 32 bits minus one, wrapping within the word (inc32 undoes it).
	j0.lo = j0.lo&^0xffffffff | uint64(uint32(j0.lo)-1)
	z := e.lh
	for j := 0; j < 16; j++ {
		n := j0.hi >> (60 - 4*j) & 0xf
		z.hi ^= e.win[j][n].hi
		z.lo ^= e.win[j][n].lo
	}
	for j := 0; j < 16; j++ {
		n := j0.lo >> (60 - 4*j) & 0xf
		z.hi ^= e.win[16+j][n].hi
		z.lo ^= e.win[16+j][n].lo
	}
	z.put(dst)
}

// xor sets dst = src xor keystream(q). dst must have 16 bytes of spare
// capacity past len(src) (GCM appends its tag there; it is wiped), and
// nonce is 16 bytes of scratch.
func (e *gcmCTR) xor(dst, src []byte, q *[blockSize]byte, nonce []byte) {
	e.nonce(nonce, q)
	out := e.aead.Seal(dst[:0], nonce, src, nil)
	clear(out[len(src):])
}
