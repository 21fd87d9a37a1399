package siv

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"testing"
)

func TestGFInverse(t *testing.T) {
	one := gf{1 << 63, 0}
	for i := 0; i < 8; i++ {
		var b [16]byte
		rand.Read(b[:])
		a := gfLoad(b[:])
		if got := gfMul(a, gfInv(a)); got != one {
			t.Fatalf("a * a^-1 = %x, want 1", got)
		}
		if got := gfMul(a, one); got != a {
			t.Fatal("a * 1 != a")
		}
	}
	// x * x = x^2 in GCM order: bit 1 then bit 2 from the left.
	x := gf{1 << 62, 0}
	if got := gfMul(x, x); got != (gf{1 << 61, 0}) {
		t.Fatalf("x*x = %x", got)
	}
}

// TestGCMCounterMatchesBlocks checks the GCM-driven counter mode against
// the block-by-block one, including counters whose low word wraps.
func TestGCMCounterMatchesBlocks(t *testing.T) {
	for k := 0; k < 4; k++ {
		key := make([]byte, 32)
		rand.Read(key)
		c, err := New(key)
		if err != nil {
			t.Fatal(err)
		}
		e := newGCMCTR(c.ctr, c.h)
		if e == nil {
			t.Fatal("GCM engine unavailable")
		}
		for _, low := range []uint32{0, 1, 0x7fffffff, 0x12345678, 0x7ffffff0} {
			for _, n := range []int{1, 16, 48, gcmMinLen, gcmMinLen + 1, 1024, 4099} {
				var q [16]byte
				rand.Read(q[:])
				binary.BigEndian.PutUint32(q[12:], low)
				q[8] &= 0x7f
				src := make([]byte, n)
				rand.Read(src)
				want := make([]byte, n)
				c.xorBlocks(want, src, &q, make([]byte, 16))
				got := make([]byte, n, n+16)
				e.xor(got, src, &q, make([]byte, 16))
				if !bytes.Equal(got, want) {
					t.Fatalf("key %d, low word %#x, %d bytes: GCM keystream differs", k, low, n)
				}
				if !bytes.Equal(got[n:n+16], make([]byte, 16)) {
					t.Fatal("GCM tag scratch not wiped")
				}
			}
		}
	}
}

// TestHotKeyPath drives one key past gcmAfterUses and checks Seal/Open
// still give the same bytes as a cold SIV.
func TestHotKeyPath(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	hot, _ := New(key)
	for _, n := range []int{0, 1, gcmMinLen - 1, gcmMinLen, 1000, 70000} {
		msg := make([]byte, n)
		rand.Read(msg)
		ad := []byte("12345678")
		cold, _ := New(key)
		want := cold.Seal(nil, ad, msg)
		for i := 0; i < 2*gcmAfterUses; i++ {
			got := hot.Seal(nil, ad, msg)
			if !bytes.Equal(got, want) {
				t.Fatalf("%d bytes, use %d: hot Seal differs from cold", n, i)
			}
			pt, err := hot.Open(nil, ad, want)
			if err != nil || !bytes.Equal(pt, msg) {
				t.Fatalf("%d bytes, use %d: hot Open: %v", n, i, err)
			}
		}
	}
	if hot.eng.Load() == nil {
		t.Fatal("hot key never switched to the GCM counter mode")
	}
}
