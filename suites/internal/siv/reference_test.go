package siv

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"testing"
)

// This file is a deliberately plain second AES-SIV (RFC 5297): the general
// form with separate MAC and CTR ciphers and any number of associated-data
// components, written for clarity (an incremental CMAC, cipher.NewCTR for
// the counter mode) and sharing no code with siv.go. It is checked against
// RFC 5297 appendix A.1 and A.2 and serves as the oracle of the
// differential tests of the fast implementation; it is test-only so that
// the module has a single production AES-SIV.

const refOverhead = 16

var errRefOpen = errors.New("siv reference: message authentication failed")

// refSealE4 and refOpenE4 are the E4 form (key k||k, one AD component).
func refSealE4(t testing.TB, dst, key, ad, plaintext []byte) []byte {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	return refSeal(dst, b, b, [][]byte{ad}, plaintext)
}

func refOpenE4(t testing.TB, dst, key, ad, ciphertext []byte) ([]byte, error) {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	return refOpen(dst, b, b, [][]byte{ad}, ciphertext)
}

// seal is RFC 5297 SIV-AES with the MAC block cipher mac (K1) and the CTR
// block cipher ctr (K2): V = S2V(K1, ads..., P), C = CTR(K2, Q(V), P).
func refSeal(dst []byte, mac, ctr cipher.Block, ads [][]byte, plaintext []byte) []byte {
	v := refS2V(mac, ads, plaintext)
	ret, out := refSliceForAppend(dst, refOverhead+len(plaintext))
	copy(out, v[:])
	refXORCTR(ctr, &v, out[refOverhead:], plaintext)
	return ret
}

func refOpen(dst []byte, mac, ctr cipher.Block, ads [][]byte, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < refOverhead {
		return nil, errRefOpen
	}
	var v [blockSize]byte
	copy(v[:], ciphertext[:refOverhead])
	ct := ciphertext[refOverhead:]
	ret, out := refSliceForAppend(dst, len(ct))
	refXORCTR(ctr, &v, out, ct)
	t := refS2V(mac, ads, out)
	if subtle.ConstantTimeCompare(t[:], ciphertext[:refOverhead]) != 1 {
		// Do not hand back unauthenticated plaintext, even in dst's spare
		// capacity.
		clear(out)
		return nil, errRefOpen
	}
	return ret, nil
}

// refXORCTR runs AES-CTR from the counter Q = V with the top bits of its last
// two 32-bit words cleared (RFC 5297 section 2.6), so that implementations
// with 64-bit or 32-bit counters agree.
func refXORCTR(b cipher.Block, v *[blockSize]byte, dst, src []byte) {
	if len(src) == 0 {
		return
	}
	q := *v
	q[8] &= 0x7f
	q[12] &= 0x7f
	cipher.NewCTR(b, q[:]).XORKeyStream(dst, src)
}

// refS2V is RFC 5297 S2V over the associated-data components ads and the final
// string p.
func refS2V(b cipher.Block, ads [][]byte, p []byte) [blockSize]byte {
	m := newRefCMAC(b)
	var zero [blockSize]byte
	m.write(zero[:])
	d := m.sum()
	for _, ad := range ads {
		refDbl(&d)
		m.reset()
		m.write(ad)
		x := m.sum()
		subtle.XORBytes(d[:], d[:], x[:])
	}
	m.reset()
	if len(p) >= blockSize {
		// T = P xorend D: the last 16 bytes of P are XORed with D.
		n := len(p) - blockSize
		m.write(p[:n])
		var last [blockSize]byte
		subtle.XORBytes(last[:], p[n:], d[:])
		m.write(last[:])
	} else {
		// T = refDbl(D) xor pad(P), pad = P || 0x80 || 0...
		refDbl(&d)
		var t [blockSize]byte
		copy(t[:], p)
		t[len(p)] = 0x80
		subtle.XORBytes(t[:], t[:], d[:])
		m.write(t[:])
	}
	return m.sum()
}

// dbl is multiplication by x in GF(2^128) with the polynomial
// x^128 + x^7 + x^2 + x + 1, big-endian, in constant time.
func refDbl(x *[blockSize]byte) {
	carry := x[0] >> 7
	for i := 0; i < blockSize-1; i++ {
		x[i] = x[i]<<1 | x[i+1]>>7
	}
	x[blockSize-1] = x[blockSize-1]<<1 ^ (0x87 & -carry)
}

// refCMAC is AES-CMAC (RFC 4493 / NIST SP 800-38B) with incremental writes.
// The last block is held back until sum, since its treatment depends on
// whether it is complete.
type refCMAC struct {
	b      cipher.Block
	k1, k2 [blockSize]byte
	x      [blockSize]byte // CBC-MAC state
	buf    [blockSize]byte // pending bytes, at most one block
	n      int             // bytes in buf
}

func newRefCMAC(b cipher.Block) *refCMAC {
	m := &refCMAC{b: b}
	b.Encrypt(m.k1[:], m.k1[:]) // L = AES(0)
	refDbl(&m.k1)
	m.k2 = m.k1
	refDbl(&m.k2)
	return m
}

func (m *refCMAC) reset() {
	m.x = [blockSize]byte{}
	m.n = 0
}

func (m *refCMAC) write(p []byte) {
	for len(p) > 0 {
		if m.n == blockSize {
			// A full pending block followed by more data is not the last
			// block: absorb it.
			subtle.XORBytes(m.x[:], m.x[:], m.buf[:])
			m.b.Encrypt(m.x[:], m.x[:])
			m.n = 0
		}
		c := copy(m.buf[m.n:], p)
		m.n += c
		p = p[c:]
	}
}

func (m *refCMAC) sum() [blockSize]byte {
	var last [blockSize]byte
	if m.n == blockSize {
		subtle.XORBytes(last[:], m.buf[:], m.k1[:])
	} else {
		copy(last[:], m.buf[:m.n])
		last[m.n] = 0x80
		subtle.XORBytes(last[:], last[:], m.k2[:])
	}
	var out [blockSize]byte
	subtle.XORBytes(out[:], m.x[:], last[:])
	m.b.Encrypt(out[:], out[:])
	return out
}

// refSliceForAppend extends in by n bytes, returning the whole slice and the
// new tail (the idiom of crypto/cipher).
func refSliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return
}
