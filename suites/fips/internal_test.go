package fips

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func TestValidScalarEdges(t *testing.T) {
	n := p256Order[:]
	minus := func(b []byte, d byte) []byte { c := bytes.Clone(b); c[31] -= d; return c }
	plus := func(b []byte, d byte) []byte { c := bytes.Clone(b); c[31] += d; return c }
	one := make([]byte, 32)
	one[31] = 1
	cases := []struct {
		name string
		c    []byte
		want bool
	}{
		{"zero", make([]byte, 32), false},
		{"one", one, true},
		{"n-1", minus(n, 1), true},
		{"n-2", minus(n, 2), true},
		{"n", n, false},
		{"n+1", plus(n, 1), false},
		{"all ff", bytes.Repeat([]byte{0xff}, 32), false},
		{"high byte ff, rest below", append([]byte{0xff, 0xff, 0xff, 0xfe}, bytes.Repeat([]byte{0xff}, 28)...), true},
		{"one above n in the middle", func() []byte { c := bytes.Clone(n); c[16]++; return c }(), false},
		{"one below n in the middle", func() []byte { c := bytes.Clone(n); c[16]--; return c }(), true},
	}
	for _, c := range cases {
		if got := validScalar(c.c); got != c.want {
			t.Errorf("%s (%s): %v, want %v", c.name, hex.EncodeToString(c.c), got, c.want)
		}
	}
}

// TestSampleScalarRejects drives the rejection path with chosen candidates:
// out-of-range candidates are skipped in order, and 256 of them fail.
func TestSampleScalarRejects(t *testing.T) {
	n := p256Order[:]
	good := bytes.Repeat([]byte{0x11}, 32)
	var asked []byte
	got, err := sampleScalar(func(i byte) ([]byte, error) {
		asked = append(asked, i)
		switch i {
		case 0:
			return bytes.Clone(n), nil
		case 1:
			return make([]byte, 32), nil
		}
		return good, nil
	})
	if err != nil || !bytes.Equal(got, good) || !bytes.Equal(asked, []byte{0, 1, 2}) {
		t.Fatalf("sampleScalar = %x, %v after candidates %v", got, err, asked)
	}
	calls := 0
	if _, err := sampleScalar(func(byte) ([]byte, error) { calls++; return bytes.Clone(n), nil }); err == nil || calls != 256 {
		t.Errorf("never-valid candidates: err %v after %d calls", err, calls)
	}
}

func TestDeriveScalarDeterministic(t *testing.T) {
	prk := bytes.Repeat([]byte{7}, 32)
	a, err := deriveScalar(prk, signingInfo)
	if err != nil {
		t.Fatal(err)
	}
	b, err := deriveScalar(prk, signingInfo)
	if err != nil {
		t.Fatal(err)
	}
	c, err := deriveScalar(prk, agreeInfo)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) || bytes.Equal(a, c) || !validScalar(a) || !validScalar(c) {
		t.Error("deriveScalar is not deterministic per label or returned an invalid scalar")
	}
}
