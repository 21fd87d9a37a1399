package siv

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"sync/atomic"

	"github.com/e4c2/e4c2/suites/core"
)

const (
	// KeySize is the size of the E4 key k; the RFC 5297 SIV key is k||k.
	KeySize = 32
	// Overhead is the size of the synthetic IV (the AES-SIV tag) that
	// Seal prepends to the ciphertext.
	Overhead = 16

	blockSize = aes.BlockSize
)

// SIV is AES-SIV (RFC 5297: S2V over AES-CMAC, then AES-CTR) with exactly
// one associated-data component, as E4 uses it. It holds the expanded AES
// key schedule and the CMAC constants that depend only on the key, so that
// sealing many messages under one key does not repeat the key setup. A SIV
// is immutable and safe for concurrent use.
//
// Every cipher.Block call gets a slice of a heap buffer the caller already
// owns (the output), never a stack array: passing a stack array through the
// cipher.Block interface would move it to the heap, one allocation per call.
type SIV struct {
	mac, ctr cipher.Block
	k1, k2   [blockSize]byte // CMAC subkeys of the MAC key
	d0dbl    [blockSize]byte // dbl(CMAC(K, 0^128)), the first S2V step
}

// New returns the E4 AES-SIV of a 32-byte key k: the RFC 5297 64-byte
// SIV key is k||k, so the CMAC key and the CTR key are both k.
func New(key []byte) (*SIV, error) {
	if err := core.CheckKeyLen("key", key, KeySize); err != nil {
		return nil, err
	}
	return newSIV(key, key)
}

// NewKeys returns RFC 5297 AES-SIV with separate CMAC and CTR keys (each
// 16, 24 or 32 bytes). E4 only uses New; this form exists so the
// implementation can be checked against the RFC's own test vectors.
func NewKeys(macKey, ctrKey []byte) (*SIV, error) {
	return newSIV(macKey, ctrKey)
}

// Seal is the one-shot form of New(key).Seal: it appends SIV || CT of
// plaintext under the 32-byte E4 key and the single associated-data
// component ad to dst. It expands the key on every call; callers sealing
// many messages under one key keep a *SIV (or a Cache) instead.
func Seal(dst, key, ad, plaintext []byte) ([]byte, error) {
	c, err := New(key)
	if err != nil {
		return nil, err
	}
	return c.Seal(dst, ad, plaintext), nil
}

// Open is the one-shot form of New(key).Open.
func Open(dst, key, ad, sivct []byte) ([]byte, error) {
	c, err := New(key)
	if err != nil {
		return nil, err
	}
	return c.Open(dst, ad, sivct)
}

func newSIV(macKey, ctrKey []byte) (*SIV, error) {
	mac, err := aes.NewCipher(macKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", core.ErrInvalidKey, err)
	}
	ctr := mac
	if subtle.ConstantTimeCompare(macKey, ctrKey) != 1 {
		if ctr, err = aes.NewCipher(ctrKey); err != nil {
			return nil, fmt.Errorf("%w: %w", core.ErrInvalidKey, err)
		}
	}
	c := &SIV{mac: mac, ctr: ctr}
	// One scratch buffer for the setup: L = E(0), K1 = dbl(L), K2 = dbl(K1),
	// then CMAC(0^128) = E(0^128 xor K1) since the zero block is complete.
	buf := make([]byte, blockSize)
	mac.Encrypt(buf, buf)
	copy(c.k1[:], buf)
	dbl(&c.k1)
	c.k2 = c.k1
	dbl(&c.k2)
	copy(buf, c.k1[:])
	mac.Encrypt(buf, buf)
	copy(c.d0dbl[:], buf)
	dbl(&c.d0dbl)
	clear(buf)
	return c, nil
}

// Overhead is the number of bytes Seal adds: the 16-byte synthetic IV.
func (c *SIV) Overhead() int { return Overhead }

// Seal appends SIV || CT of plaintext under the associated data ad to dst
// and returns the result. dst must not overlap plaintext.
func (c *SIV) Seal(dst, ad, plaintext []byte) []byte {
	ret, out := sliceForAppend(dst, Overhead+len(plaintext))
	tag := out[:Overhead]
	c.s2v(tag, ad, plaintext)
	c.xorCTR(out[Overhead:], plaintext, tag)
	return ret
}

// Open checks and decrypts sivct = SIV || CT under ad, appends the plaintext
// to dst and returns it. On failure it returns an error wrapping
// core.ErrNotAuthentic (or core.ErrTooShortCiphertext if sivct is shorter
// than the tag) and writes nothing visible to dst.
func (c *SIV) Open(dst, ad, sivct []byte) ([]byte, error) {
	if len(sivct) < Overhead {
		return nil, fmt.Errorf("%w: %d bytes, the SIV alone is %d", core.ErrTooShortCiphertext, len(sivct), Overhead)
	}
	n := len(sivct) - Overhead
	// The 16 bytes past the plaintext hold the counter, then the recomputed
	// SIV: heap memory the result already owns, so neither costs an
	// allocation (see SIV). They are zeroed and cut off before returning.
	ret, out := sliceForAppend(dst, n+blockSize)
	pt, scratch := out[:n:n], out[n:]
	copy(scratch, sivct[:Overhead]) // never write to the caller's input
	c.xorCTR(pt, sivct[Overhead:], scratch)
	c.s2v(scratch, ad, pt)
	ok := subtle.ConstantTimeCompare(scratch, sivct[:Overhead]) == 1
	clear(out[n:])
	if !ok {
		clear(pt)
		return nil, fmt.Errorf("%w: AES-SIV tag mismatch", core.ErrNotAuthentic)
	}
	end := len(ret) - blockSize
	return ret[:end:end], nil
}

// s2v computes S2V(K, ad, p) (RFC 5297 section 2.4 with one AD component)
// into st, a 16-byte slice of heap memory used as the CMAC state.
func (c *SIV) s2v(st, ad, p []byte) {
	c.cmac(st, ad)
	xorInto(st, c.d0dbl[:]) // D = dbl(CMAC(0)) xor CMAC(ad)
	if len(p) < blockSize {
		// T = dbl(D) xor pad(p): one complete block, so CMAC(T) = E(T xor K1).
		d := [blockSize]byte(st)
		dbl(&d)
		var last [blockSize]byte
		copy(last[:], p)
		last[len(p)] = 0x80
		xorInto(d[:], last[:])
		xorInto(d[:], c.k1[:])
		copy(st, d[:])
		c.mac.Encrypt(st, st)
		return
	}
	// T = p xorend D, MACed without materialising T: the blocks before the
	// last 16 bytes go through unchanged, the tail (16..31 bytes) gets D.
	d := [blockSize]byte(st)
	clear(st)
	start := (len(p) - blockSize) &^ (blockSize - 1)
	c.chain(st, p[:start])
	var tail [2 * blockSize]byte
	tn := copy(tail[:], p[start:])
	xorInto(tail[tn-blockSize:tn], d[:])
	if tn == blockSize {
		xorInto(tail[:blockSize], c.k1[:])
		xorInto(st, tail[:blockSize])
		c.mac.Encrypt(st, st)
		return
	}
	xorInto(st, tail[:blockSize])
	c.mac.Encrypt(st, st)
	tail[tn] = 0x80
	xorInto(tail[blockSize:], c.k2[:])
	xorInto(st, tail[blockSize:])
	c.mac.Encrypt(st, st)
}

// cmac computes AES-CMAC(K, m) (RFC 4493) into st.
func (c *SIV) cmac(st, m []byte) {
	clear(st)
	n := len(m)
	var last [blockSize]byte
	if n > 0 && n%blockSize == 0 {
		c.chain(st, m[:n-blockSize])
		copy(last[:], m[n-blockSize:])
		xorInto(last[:], c.k1[:])
	} else {
		full := n &^ (blockSize - 1)
		c.chain(st, m[:full])
		r := copy(last[:], m[full:])
		last[r] = 0x80
		xorInto(last[:], c.k2[:])
	}
	xorInto(st, last[:])
	c.mac.Encrypt(st, st)
}

// chain runs the CBC-MAC chain over whole blocks of m: st = E(st xor m_i).
// The XOR is crypto/subtle's (16-byte vector loads and stores): two 8-byte
// Go stores followed by the cipher's 16-byte load would stall store
// forwarding on every block of this latency-bound chain.
func (c *SIV) chain(st, m []byte) {
	for len(m) >= blockSize {
		subtle.XORBytes(st, st, m[:blockSize])
		c.mac.Encrypt(st, st)
		m = m[blockSize:]
	}
}

// xorCTR sets dst = src xor AES-CTR keystream from Q = V with bits 63 and
// 31 cleared (RFC 5297 section 2.5), the counter a 128-bit big-endian
// integer, which is how cipher.NewCTR increments it. dst must not overlap
// src.
//
// v holds V in heap memory the caller owns: Q is made by clearing the two
// bits in place and v is restored before returning. A stack copy of Q
// would escape through the cipher.Block interface inside cipher.NewCTR,
// one more allocation per message.
//
// The standard library's CTR is used as is, at the price of one allocation
// for its state per message (see the package doc for why).
func (c *SIV) xorCTR(dst, src, v []byte) {
	if len(src) == 0 {
		return
	}
	b8, b12 := v[8], v[12]
	v[8] &= 0x7f
	v[12] &= 0x7f
	cipher.NewCTR(c.ctr, v[:blockSize]).XORKeyStream(dst[:len(src)], src)
	v[8], v[12] = b8, b12
}

// dbl is the RFC 5297 doubling in GF(2^128): a left shift by one bit, with
// the reduction 0x87 folded in (constant time) when the top bit was set.
func dbl(x *[blockSize]byte) {
	hi := binary.BigEndian.Uint64(x[0:8])
	lo := binary.BigEndian.Uint64(x[8:16])
	carry := hi >> 63
	hi = hi<<1 | lo>>63
	lo = lo<<1 ^ (0x87 & -carry)
	binary.BigEndian.PutUint64(x[0:8], hi)
	binary.BigEndian.PutUint64(x[8:16], lo)
}

// xorInto sets dst[:16] ^= src[:16].
func xorInto(dst, src []byte) {
	_, _ = dst[15], src[15]
	binary.LittleEndian.PutUint64(dst[0:8], binary.LittleEndian.Uint64(dst[0:8])^binary.LittleEndian.Uint64(src[0:8]))
	binary.LittleEndian.PutUint64(dst[8:16], binary.LittleEndian.Uint64(dst[8:16])^binary.LittleEndian.Uint64(src[8:16]))
}

// sliceForAppend extends in by n bytes, reallocating only if the capacity
// is short, and returns the whole slice and the new tail.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	total := len(in) + n
	if cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	return head, head[len(in):]
}

// cacheSlots bounds a key cache (about 600 bytes a slot).
const cacheSlots = 64

// Cache maps 32-byte keys to their expanded SIV so that Protect and
// Unprotect, which receive raw key bytes on every call, do not redo the AES
// key schedule and the CMAC subkeys for every message (that setup is one
// allocation and about 15% of a 1 KiB message).
//
// Security: a cache lives in one Suite value (no package state); it is
// direct-mapped with a per-suite random hash seed, so which slot a key
// lands in tells nothing across processes; a hit is confirmed by a
// constant-time comparison of the whole key, so a colliding key never gets
// another key's schedule; and it holds at most cacheSlots keys, a key
// leaving the cache when another key hashes to its slot. A key removed from
// the device state can stay here until then; Go gives no erasure guarantee
// for the caller's copies either, so this adds no new class of exposure,
// and Forget drops a key at once for callers that want it.
//
// A nil *Cache is valid: Get then expands the key on every call. A Cache is
// safe for concurrent use.
type Cache struct {
	seed  maphash.Seed
	slots [cacheSlots]atomic.Pointer[cachedKey]
}

type cachedKey struct {
	raw [KeySize]byte
	siv *SIV
}

// NewCache returns an empty cache with a fresh random hash seed.
func NewCache() *Cache { return &Cache{seed: maphash.MakeSeed()} }

func (c *Cache) slot(key []byte) *atomic.Pointer[cachedKey] {
	return &c.slots[maphash.Bytes(c.seed, key)%cacheSlots]
}

// Get returns the SIV of key, from the cache or freshly expanded.
func (c *Cache) Get(key []byte) (*SIV, error) {
	if err := core.CheckKeyLen("key", key, KeySize); err != nil {
		return nil, err
	}
	if c == nil {
		return newSIV(key, key)
	}
	slot := c.slot(key)
	if e := slot.Load(); e != nil && subtle.ConstantTimeCompare(e.raw[:], key) == 1 {
		return e.siv, nil
	}
	siv, err := newSIV(key, key)
	if err != nil {
		return nil, err
	}
	e := &cachedKey{siv: siv}
	copy(e.raw[:], key)
	slot.Store(e)
	return siv, nil
}

// Forget drops key from the cache if it is there.
func (c *Cache) Forget(key []byte) {
	if c == nil || len(key) != KeySize {
		return
	}
	slot := c.slot(key)
	if e := slot.Load(); e != nil && subtle.ConstantTimeCompare(e.raw[:], key) == 1 {
		slot.CompareAndSwap(e, nil)
	}
}
