package siv

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
)

const (
	// KeySize is the size of the E4 key k; the SIV key is k||k.
	KeySize = 32
	// Overhead is the size of the synthetic IV prepended to the ciphertext.
	Overhead = 16

	blockSize = aes.BlockSize
)

var (
	// ErrKeySize reports a key that is not KeySize bytes long.
	ErrKeySize = errors.New("siv: key must be 32 bytes")
	// ErrOpen reports a ciphertext that is too short or fails authentication.
	// The two cases are not distinguished on purpose.
	ErrOpen = errors.New("siv: message authentication failed")
)

// Seal encrypts and authenticates plaintext under key (the E4 32-byte key,
// used as k||k) with the single associated-data component ad, and appends
// SIV||CT to dst. dst and plaintext may not overlap partially.
func Seal(dst, key, ad, plaintext []byte) ([]byte, error) {
	if len(key) != KeySize {
		return nil, ErrKeySize
	}
	// k||k: the CMAC key (K1) and the CTR key (K2) are both k.
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("siv: %w", err)
	}
	return seal(dst, b, b, [][]byte{ad}, plaintext), nil
}

// Open checks and decrypts ciphertext (SIV||CT) under key with the single
// associated-data component ad, and appends the plaintext to dst. On failure
// it returns ErrOpen and nothing is appended.
func Open(dst, key, ad, ciphertext []byte) ([]byte, error) {
	if len(key) != KeySize {
		return nil, ErrKeySize
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("siv: %w", err)
	}
	return open(dst, b, b, [][]byte{ad}, ciphertext)
}

// seal is RFC 5297 SIV-AES with the MAC block cipher mac (K1) and the CTR
// block cipher ctr (K2): V = S2V(K1, ads..., P), C = CTR(K2, Q(V), P).
func seal(dst []byte, mac, ctr cipher.Block, ads [][]byte, plaintext []byte) []byte {
	v := s2v(mac, ads, plaintext)
	ret, out := sliceForAppend(dst, Overhead+len(plaintext))
	copy(out, v[:])
	xorCTR(ctr, &v, out[Overhead:], plaintext)
	return ret
}

func open(dst []byte, mac, ctr cipher.Block, ads [][]byte, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < Overhead {
		return nil, ErrOpen
	}
	var v [blockSize]byte
	copy(v[:], ciphertext[:Overhead])
	ct := ciphertext[Overhead:]
	ret, out := sliceForAppend(dst, len(ct))
	xorCTR(ctr, &v, out, ct)
	t := s2v(mac, ads, out)
	if subtle.ConstantTimeCompare(t[:], ciphertext[:Overhead]) != 1 {
		// Do not hand back unauthenticated plaintext, even in dst's spare
		// capacity.
		clear(out)
		return nil, ErrOpen
	}
	return ret, nil
}

// xorCTR runs AES-CTR from the counter Q = V with the top bits of its last
// two 32-bit words cleared (RFC 5297 section 2.6), so that implementations
// with 64-bit or 32-bit counters agree.
func xorCTR(b cipher.Block, v *[blockSize]byte, dst, src []byte) {
	if len(src) == 0 {
		return
	}
	q := *v
	q[8] &= 0x7f
	q[12] &= 0x7f
	cipher.NewCTR(b, q[:]).XORKeyStream(dst, src)
}

// s2v is RFC 5297 S2V over the associated-data components ads and the final
// string p.
func s2v(b cipher.Block, ads [][]byte, p []byte) [blockSize]byte {
	m := newCMAC(b)
	var zero [blockSize]byte
	m.write(zero[:])
	d := m.sum()
	for _, ad := range ads {
		dbl(&d)
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
		// T = dbl(D) xor pad(P), pad = P || 0x80 || 0...
		dbl(&d)
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
func dbl(x *[blockSize]byte) {
	carry := x[0] >> 7
	for i := 0; i < blockSize-1; i++ {
		x[i] = x[i]<<1 | x[i+1]>>7
	}
	x[blockSize-1] = x[blockSize-1]<<1 ^ (0x87 & -carry)
}

// cmac is AES-CMAC (RFC 4493 / NIST SP 800-38B) with incremental writes.
// The last block is held back until sum, since its treatment depends on
// whether it is complete.
type cmac struct {
	b      cipher.Block
	k1, k2 [blockSize]byte
	x      [blockSize]byte // CBC-MAC state
	buf    [blockSize]byte // pending bytes, at most one block
	n      int             // bytes in buf
}

func newCMAC(b cipher.Block) *cmac {
	m := &cmac{b: b}
	b.Encrypt(m.k1[:], m.k1[:]) // L = AES(0)
	dbl(&m.k1)
	m.k2 = m.k1
	dbl(&m.k2)
	return m
}

func (m *cmac) reset() {
	m.x = [blockSize]byte{}
	m.n = 0
}

func (m *cmac) write(p []byte) {
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

func (m *cmac) sum() [blockSize]byte {
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

// sliceForAppend extends in by n bytes, returning the whole slice and the
// new tail (the idiom of crypto/cipher).
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return
}
