package siv

import (
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/e4c2/e4c2/suites/core"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// TestRFC5297 checks the general construction (the reference in
// reference_test.go) against RFC 5297 appendix A (A.1 deterministic, A.2
// with two AD components and a nonce), with AES-128 K1 (MAC) and K2 (CTR)
// halves, and the fast SIV against A.1, the one-AD case it implements.
func TestRFC5297(t *testing.T) {
	cases := []struct {
		name, key, pt, out string
		ads                []string
	}{
		{
			name: "A.1 deterministic",
			key:  "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
			ads:  []string{"101112131415161718191a1b1c1d1e1f2021222324252627"},
			pt:   "112233445566778899aabbccddee",
			out:  "85632d07c6e8f37f950acd320a2ecc9340c02b9690c4dc04daef7f6afe5c",
		},
		{
			name: "A.2 nonce-based",
			key:  "7f7e7d7c7b7a79787776757473727170404142434445464748494a4b4c4d4e4f",
			ads: []string{
				"00112233445566778899aabbccddeeffdeaddadadeaddadaffeeddccbbaa99887766554433221100",
				"102030405060708090a0",
				"09f911029d74e35bd84156c5635688c0",
			},
			pt:  "7468697320697320736f6d6520706c61696e7465787420746f20656e6372797074207573696e67205349562d414553",
			out: "7bdb6e3b432667eb06f4d14bff2fbd0fcb900f2fddbe404326601965c889bf17dba77ceb094fa663b7a3f748ba8af829ea64ad544a272e9c485b62a3fd5c0d",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := unhex(t, c.key)
			mac, err := aes.NewCipher(key[:16])
			if err != nil {
				t.Fatal(err)
			}
			ctr, err := aes.NewCipher(key[16:])
			if err != nil {
				t.Fatal(err)
			}
			var ads [][]byte
			for _, a := range c.ads {
				ads = append(ads, unhex(t, a))
			}
			pt, want := unhex(t, c.pt), unhex(t, c.out)
			got := refSeal(nil, mac, ctr, ads, pt)
			if !bytes.Equal(got, want) {
				t.Fatalf("reference seal = %x, want %x", got, want)
			}
			back, err := refOpen(nil, mac, ctr, ads, got)
			if err != nil || !bytes.Equal(back, pt) {
				t.Fatalf("reference open = %x, %v", back, err)
			}
			if len(ads) != 1 {
				return // the fast SIV takes exactly one AD component, as E4 does
			}
			c, err := NewKeys(key[:16], key[16:])
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Seal(nil, ads[0], pt); !bytes.Equal(got, want) {
				t.Fatalf("Seal = %x, want %x", got, want)
			}
			if back, err := c.Open(nil, ads[0], want); err != nil || !bytes.Equal(back, pt) {
				t.Fatalf("Open = %x, %v", back, err)
			}
		})
	}
}

// vectorsPath is the E4 vectors' file, the copy the repository keeps in
// suites/testdata, relative to this package: one place, so that every run
// (a clean clone, CI) tests the same vectors.
func vectorsPath() string {
	return filepath.Join("..", "..", "testdata", "e4-standard.json")
}

// TestE4Vectors checks Seal and Open against every aes_siv vector of the
// reference library (e4crypto.Encrypt), and the test-only reference
// implementation too, so that the differential tests compare against an
// oracle known to be right.
func TestE4Vectors(t *testing.T) {
	raw, err := os.ReadFile(vectorsPath())
	if err != nil {
		t.Fatalf("E4 vectors: %v", err)
	}
	var file struct {
		AESSIV []struct {
			Description string `json:"description"`
			Key         string `json:"key"`
			AD          string `json:"ad"`
			Plaintext   string `json:"plaintext"`
			Output      string `json:"output"`
		} `json:"aes_siv"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.AESSIV) == 0 {
		t.Fatal("no aes_siv vectors")
	}
	for i, v := range file.AESSIV {
		t.Run(v.Description, func(t *testing.T) {
			key, ad, pt, want := unhex(t, v.Key), unhex(t, v.AD), unhex(t, v.Plaintext), unhex(t, v.Output)
			got, err := Seal(nil, key, ad, pt)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("vector %d: Seal = %x, want %x", i, got, want)
			}
			back, err := Open(nil, key, ad, want)
			if err != nil || !bytes.Equal(back, pt) {
				t.Fatalf("vector %d: Open = %x, %v", i, back, err)
			}
			if ref := refSealE4(t, nil, key, ad, pt); !bytes.Equal(ref, want) {
				t.Fatalf("vector %d: reference seal = %x, want %x", i, ref, want)
			}
		})
	}
}

func TestOpenRejects(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	ad := []byte("12345678")
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 100} {
		pt := bytes.Repeat([]byte{0xa5}, n)
		ct, err := Seal(nil, key, ad, pt)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != n+Overhead {
			t.Fatalf("len %d: got %d bytes", n, len(ct))
		}
		for i := range ct {
			bad := bytes.Clone(ct)
			bad[i] ^= 0x01
			if _, err := Open(nil, key, ad, bad); !errors.Is(err, core.ErrNotAuthentic) {
				t.Fatalf("len %d: flipped byte %d accepted (%v)", n, i, err)
			}
		}
		if _, err := Open(nil, key, []byte("12345679"), ct); !errors.Is(err, core.ErrNotAuthentic) {
			t.Fatalf("len %d: wrong ad accepted", n)
		}
		otherKey := bytes.Clone(key)
		otherKey[31] ^= 1
		if _, err := Open(nil, otherKey, ad, ct); !errors.Is(err, core.ErrNotAuthentic) {
			t.Fatalf("len %d: wrong key accepted", n)
		}
		for cut := 0; cut < len(ct); cut++ {
			want := core.ErrNotAuthentic
			if cut < Overhead {
				want = core.ErrTooShortCiphertext
			}
			if _, err := Open(nil, key, ad, ct[:cut]); !errors.Is(err, want) {
				t.Fatalf("len %d: truncation to %d accepted", n, cut)
			}
		}
	}
	if _, err := Seal(nil, key[:16], ad, nil); !errors.Is(err, core.ErrInvalidKey) {
		t.Fatalf("16-byte key: %v", err)
	}
	if _, err := Open(nil, key[:31], ad, make([]byte, 16)); !errors.Is(err, core.ErrInvalidKey) {
		t.Fatalf("31-byte key: %v", err)
	}
}

// TestAppend checks the dst-append contract: a prefix is kept, and a failed
// Open leaves no plaintext in dst's spare capacity.
func TestAppend(t *testing.T) {
	key := bytes.Repeat([]byte{1}, KeySize)
	ad := []byte("adadadad")
	pt := []byte("the quick brown fox jumps over the lazy dog")
	prefix := []byte("prefix")
	ct, err := Seal(bytes.Clone(prefix), key, ad, pt)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(ct, prefix) {
		t.Fatal("prefix lost")
	}
	sealed := ct[len(prefix):]
	buf := make([]byte, 0, 256)
	out, err := Open(buf, key, ad, sealed)
	if err != nil || !bytes.Equal(out, pt) {
		t.Fatalf("Open = %q, %v", out, err)
	}
	bad := bytes.Clone(sealed)
	bad[0] ^= 0x80
	buf = make([]byte, 0, 256)
	if _, err := Open(buf, key, ad, bad); err == nil {
		t.Fatal("tampered SIV accepted")
	}
	if !bytes.Equal(buf[:cap(buf)], make([]byte, 256)) {
		t.Fatal("unauthenticated plaintext left in dst")
	}
}

func FuzzOpen(f *testing.F) {
	key := bytes.Repeat([]byte{3}, KeySize)
	ad := []byte("tstamp!!")
	for _, n := range []int{0, 5, 16, 40} {
		ct, _ := Seal(nil, key, ad, make([]byte, n))
		f.Add(ct)
	}
	f.Fuzz(func(t *testing.T, ct []byte) {
		pt, err := Open(nil, key, ad, ct)
		if err != nil {
			return
		}
		again, err := Seal(nil, key, ad, pt)
		if err != nil || !bytes.Equal(again, ct) {
			t.Fatalf("accepted %x but it does not re-seal to itself", ct)
		}
	})
}

func BenchmarkSeal1K(b *testing.B) {
	key := make([]byte, KeySize)
	ad := make([]byte, 8)
	pt := make([]byte, 1024)
	dst := make([]byte, 0, 1024+Overhead)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		_, _ = Seal(dst, key, ad, pt)
	}
}
