package siv

import (
	"bytes"
	"crypto/rand"
	"testing"
)

// TestCrossCheckReference compares the AES-SIV of this package with the
// independent reference in reference_test.go on random keys, AD and
// plaintext lengths.
func TestCrossCheckReference(t *testing.T) {
	for k := 0; k < 6; k++ {
		key := make([]byte, 32)
		rand.Read(key)
		c, err := New(key)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 255, 256, 257, 1000, 4096, 10007} {
			for rep := 0; rep < 16; rep++ {
				ad := make([]byte, (n+rep)%40)
				pt := make([]byte, n)
				rand.Read(ad)
				rand.Read(pt)
				want := refSealE4(t, nil, key, ad, pt)
				if got := c.Seal(nil, ad, pt); !bytes.Equal(got, want) {
					t.Fatalf("key %d, %d bytes, AD %d bytes: Seal differs from the reference", k, n, len(ad))
				}
				if got, err := c.Open(nil, ad, want); err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("key %d, %d bytes: Open of the other implementation's output: %v", k, n, err)
				}
				bad := bytes.Clone(want)
				bad[rep%len(bad)] ^= 1 << (rep % 8)
				_, refErr := refOpenE4(t, nil, key, ad, bad)
				_, err := c.Open(nil, ad, bad)
				if err == nil || refErr == nil {
					t.Fatalf("key %d, %d bytes: tampered byte accepted (fast %v, reference %v)", k, n, err, refErr)
				}
			}
		}
	}
}
