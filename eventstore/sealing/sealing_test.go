package sealing

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/memstore"
	"github.com/e4c2/e4c2/eventstore/storetest"
)

var ctx = context.Background()

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func master(t *testing.T, b byte) *MasterKey {
	t.Helper()
	m, err := MasterKeyFromBytes(key(b))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// cheap returns a passphrase master key with low KDF cost, for tests that
// exercise the keyring logic rather than the KDF cost.
func cheap(t *testing.T, pass string, kdf KDF) *MasterKey {
	t.Helper()
	m, err := MasterKeyFromPassphrase([]byte(pass), kdf)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := DefaultKDFParams(kdf)
	p.Time, p.MemoryKiB, p.Threads, p.Iterations = 1, 64, 1, 1000
	if kdf == KDFPBKDF2SHA256 {
		p.Time, p.MemoryKiB, p.Threads = 0, 0, 0
	}
	return m.WithKDFParams(p)
}

func TestSealOpenAndBinding(t *testing.T) {
	st := memstore.New()
	k, err := OpenKeyring(ctx, st, master(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("topic key 0123456789abcdef012345")
	ad := SealAD("topic-a", 3, "topic.key_rotated.v1")
	sealed, err := k.Seal(secret, ad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("sealed value contains the plaintext")
	}
	got, err := k.Open(sealed, ad)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open: %q, %v", got, err)
	}
	again, _ := k.Seal(secret, ad)
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of one value are equal: nonce reused")
	}
	moved := map[string][]byte{
		"other stream":  SealAD("topic-b", 3, "topic.key_rotated.v1"),
		"other version": SealAD("topic-a", 4, "topic.key_rotated.v1"),
		"other type":    SealAD("topic-a", 3, "client.key_rotated.v1"),
		// Length prefixes keep field boundaries: no shifting of bytes.
		"shifted": SealAD("topic-a\x00", 3, "topic.key_rotated.v1"),
		"no ad":   nil,
	}
	for name, other := range moved {
		if _, err := k.Open(sealed, other); !errors.Is(err, ErrUnseal) {
			t.Errorf("%s: Open: %v, want ErrUnseal", name, err)
		}
	}
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		if _, err := k.Open(bad, ad); err == nil {
			t.Fatalf("byte %d altered: Open succeeded", i)
		}
	}
	for n := 0; n < len(sealed); n++ {
		if _, err := k.Open(sealed[:n], ad); err == nil {
			t.Fatalf("truncated to %d: Open succeeded", n)
		}
	}
}

func TestWrongMasterKeyFailsAtOpen(t *testing.T) {
	st := memstore.New()
	k, err := OpenKeyring(ctx, st, master(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	k.Close()
	if _, err := OpenKeyring(ctx, st, master(t, 2)); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("wrong raw key: %v, want ErrWrongMasterKey", err)
	}
	if _, err := OpenKeyring(ctx, st, cheap(t, "pass", KDFArgon2id)); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("passphrase on a raw-key keyring: %v, want ErrWrongMasterKey", err)
	}
	if k, err := OpenKeyring(ctx, st, master(t, 1)); err != nil {
		t.Fatalf("right key: %v", err)
	} else {
		k.Close()
	}
	ps := memstore.New()
	if _, err := OpenKeyring(ctx, ps, cheap(t, "right", KDFArgon2id)); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*MasterKey{cheap(t, "wrong", KDFArgon2id), master(t, 1)} {
		if _, err := OpenKeyring(ctx, ps, m); !errors.Is(err, ErrWrongMasterKey) {
			t.Fatalf("wrong master on a passphrase keyring: %v, want ErrWrongMasterKey", err)
		}
	}
}

func TestRotateMaster(t *testing.T) {
	for _, tc := range []struct {
		name     string
		old, new func() *MasterKey
		wrongOld func() *MasterKey
	}{
		{"raw to raw", func() *MasterKey { return master(t, 1) }, func() *MasterKey { return master(t, 2) }, nil},
		{"raw to pbkdf2", func() *MasterKey { return master(t, 1) }, func() *MasterKey { return cheap(t, "new pass", KDFPBKDF2SHA256) }, nil},
		{"argon2 to raw", func() *MasterKey { return cheap(t, "old pass", KDFArgon2id) }, func() *MasterKey { return master(t, 3) }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := memstore.New()
			k, err := OpenKeyring(ctx, st, tc.old())
			if err != nil {
				t.Fatal(err)
			}
			ad := SealAD("s", 1, "t")
			sealed, _ := k.Seal([]byte("secret"), ad)
			before, _ := st.LoadKeyring(ctx)
			if err := k.Rotate(ctx, tc.new()); err != nil {
				t.Fatal(err)
			}
			after, _ := st.LoadKeyring(ctx)
			if bytes.Equal(before, after) {
				t.Fatal("rotation did not change the stored keyring")
			}
			if got, err := k.Open(sealed, ad); err != nil || string(got) != "secret" {
				t.Fatalf("open after rotation: %v", err)
			}
			k.Close()
			if _, err := OpenKeyring(ctx, st, tc.old()); !errors.Is(err, ErrWrongMasterKey) {
				t.Fatalf("old master after rotation: %v, want ErrWrongMasterKey", err)
			}
			k2, err := OpenKeyring(ctx, st, tc.new())
			if err != nil {
				t.Fatalf("new master after rotation: %v", err)
			}
			defer k2.Close()
			if got, err := k2.Open(sealed, ad); err != nil || string(got) != "secret" {
				t.Fatalf("open with the reopened keyring: %v", err)
			}
		})
	}
}

func TestRotateDEK(t *testing.T) {
	st := memstore.New()
	k, err := OpenKeyring(ctx, st, master(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	ad := SealAD("s", 1, "t")
	old, _ := k.Seal([]byte("old"), ad)
	id, err := k.RotateDEK(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id != 2 || k.CurrentDEK() != 2 {
		t.Fatalf("new DEK id %d (current %d), want 2", id, k.CurrentDEK())
	}
	nw, _ := k.Seal([]byte("new"), ad)
	if got := nw[1:5]; !bytes.Equal(got, []byte{0, 0, 0, 2}) {
		t.Fatalf("new seal names DEK %x, want 2", got)
	}
	if !bytes.Equal(old[1:5], []byte{0, 0, 0, 1}) {
		t.Fatalf("old seal names DEK %x, want 1", old[1:5])
	}
	k.Close()
	k, err = OpenKeyring(ctx, st, master(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	for want, s := range map[string][]byte{"old": old, "new": nw} {
		if got, err := k.Open(s, ad); err != nil || string(got) != want {
			t.Fatalf("open %s after reopen: %q, %v", want, got, err)
		}
	}
	unknown := bytes.Clone(nw)
	unknown[4] = 9
	if _, err := k.Open(unknown, ad); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown DEK: %v", err)
	}
}

// TestPassphraseDefaults runs the real KDF costs once each.
func TestPassphraseDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("full-cost KDFs skipped in -short mode")
	}
	for _, kdf := range []KDF{KDFArgon2id, KDFPBKDF2SHA256} {
		t.Run(string(kdf), func(t *testing.T) {
			st := memstore.New()
			m, _ := MasterKeyFromPassphrase([]byte("correct horse"), kdf)
			k, err := OpenKeyring(ctx, st, m)
			if err != nil {
				t.Fatal(err)
			}
			k.Close()
			raw, _ := st.LoadKeyring(ctx)
			var f keyringFile
			if err := json.Unmarshal(raw, &f); err != nil {
				t.Fatal(err)
			}
			want, _ := DefaultKDFParams(kdf)
			if f.KDF == nil || len(f.KDF.Salt) != SaltSize || f.KDF.Name != kdf || f.KDF.Time != want.Time ||
				f.KDF.MemoryKiB != want.MemoryKiB || f.KDF.Threads != want.Threads || f.KDF.Iterations != want.Iterations {
				t.Fatalf("stored kdf %+v, want %+v with a %d-byte salt", f.KDF, want, SaltSize)
			}
			if kdf == KDFArgon2id && (want.Time != 3 || want.MemoryKiB != 65536 || want.Threads != 4) {
				t.Fatalf("argon2id defaults %+v", want)
			}
			if kdf == KDFPBKDF2SHA256 && want.Iterations != 600000 {
				t.Fatalf("pbkdf2 defaults %+v", want)
			}
			// (A wrong passphrase is refused in TestWrongMasterKeyFailsAtOpen,
			// with cheaper parameters: each derivation here costs seconds
			// under the race detector.)
		})
	}
}

func TestKDFSalted(t *testing.T) {
	// The same passphrase in two keyrings gives two salts and two KEKs.
	a, b := memstore.New(), memstore.New()
	for _, st := range []*memstore.Store{a, b} {
		k, err := OpenKeyring(ctx, st, cheap(t, "same", KDFPBKDF2SHA256))
		if err != nil {
			t.Fatal(err)
		}
		k.Close()
	}
	ra, _ := a.LoadKeyring(ctx)
	rb, _ := b.LoadKeyring(ctx)
	var fa, fb keyringFile
	_ = json.Unmarshal(ra, &fa)
	_ = json.Unmarshal(rb, &fb)
	if bytes.Equal(fa.KDF.Salt, fb.KDF.Salt) {
		t.Fatal("two keyrings share a salt")
	}
	if KDFForSuite("fips") != KDFPBKDF2SHA256 || KDFForSuite("standard") != KDFArgon2id {
		t.Fatal("KDFForSuite")
	}
}

func TestMasterKeyFile(t *testing.T) {
	dir := t.TempDir()
	k := key(7)
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, p := range map[string]string{
		"raw":      write("raw", k, 0o600),
		"hex":      write("hex", []byte(hex.EncodeToString(k)+"\n"), 0o600),
		"readonly": write("ro", k, 0o400),
	} {
		m, err := LoadMasterKeyFile(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if kek, _ := m.kek(nil); !bytes.Equal(kek, k) {
			t.Fatalf("%s: wrong key loaded", name)
		}
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		p := write(fmt.Sprintf("open-%o", mode), k, mode)
		_, err := LoadMasterKeyFile(p)
		if !errors.Is(err, ErrInsecureKeyFile) {
			t.Fatalf("mode %o: %v, want ErrInsecureKeyFile", mode, err)
		}
		if !strings.Contains(err.Error(), "0600") {
			t.Fatalf("error does not say what to do: %v", err)
		}
	}
	for name, b := range map[string][]byte{"short": k[:31], "long hex": []byte(hex.EncodeToString(k) + "00"), "not hex": bytes.Repeat([]byte("z"), 64)} {
		_, err := LoadMasterKeyFile(write(name, b, 0o600))
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		if strings.Contains(err.Error(), string(b)) {
			t.Fatalf("%s: error quotes the file content", name)
		}
	}
	if _, err := LoadMasterKeyFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestMasterKeyEnv(t *testing.T) {
	k := key(9)
	for name, v := range map[string]string{
		"hex":    hex.EncodeToString(k),
		"base64": base64.StdEncoding.EncodeToString(k),
		"raw64":  base64.RawURLEncoding.EncodeToString(k),
	} {
		t.Setenv("E4C2_TEST_MASTER", v)
		m, err := MasterKeyFromEnv("E4C2_TEST_MASTER")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if kek, _ := m.kek(nil); !bytes.Equal(kek, k) {
			t.Fatalf("%s: wrong key", name)
		}
	}
	bad := hex.EncodeToString(k[:31])
	t.Setenv("E4C2_TEST_MASTER", bad)
	_, err := MasterKeyFromEnv("E4C2_TEST_MASTER")
	if err == nil || strings.Contains(err.Error(), bad) {
		t.Fatalf("short key: %v", err)
	}
	if _, err := MasterKeyFromEnv("E4C2_TEST_UNSET_VARIABLE"); err == nil {
		t.Fatal("unset variable accepted")
	}
}

func TestSecretsNotPrinted(t *testing.T) {
	st := memstore.New()
	m := master(t, 0xab)
	k, err := OpenKeyring(ctx, st, m)
	if err != nil {
		t.Fatal(err)
	}
	dek := hex.EncodeToString(k.deks[k.CurrentDEK()])
	out := fmt.Sprintf("%v %+v %#v %s %v %+v %#v", m, m, m, k, k, k, k)
	for _, secret := range []string{hex.EncodeToString(key(0xab)), dek, string(key(0xab))} {
		if strings.Contains(out, secret) || strings.Contains(strings.ReplaceAll(out, " ", ""), secret) {
			t.Fatal("formatting a master key or keyring prints a secret")
		}
	}
	// Close zeroes the keys it held.
	kek, deks := k.kek, [][]byte{}
	for _, d := range k.deks {
		deks = append(deks, d)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	for _, b := range append(deks, kek) {
		if !bytes.Equal(b, make([]byte, len(b))) {
			t.Fatal("Close left key bytes in memory")
		}
	}
	if _, err := k.Seal([]byte("x"), nil); !errors.Is(err, ErrKeyringClosed) {
		t.Fatalf("Seal after Close: %v", err)
	}
	m.Destroy()
	if _, err := m.kek(nil); err == nil {
		t.Fatal("destroyed master key still usable")
	}
}

func TestNoNewKeyringForNonEmptyLog(t *testing.T) {
	st := memstore.New()
	if _, err := st.Append(ctx, "s", -1, storetest.Event(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenKeyring(ctx, st, master(t, 1)); !errors.Is(err, eventstore.ErrNoKeyring) {
		t.Fatalf("keyring created for a log that holds events: %v", err)
	}
	if _, err := st.LoadKeyring(ctx); !errors.Is(err, eventstore.ErrNoKeyring) {
		t.Fatal("a keyring was saved")
	}
}

func TestMalformedKeyring(t *testing.T) {
	for name, raw := range map[string]string{
		"not json":       "{",
		"format":         `{"format":2}`,
		"no check":       `{"format":1,"current":1,"deks":[]}`,
		"huge argon2":    `{"format":1,"kdf":{"name":"argon2id","salt":"AAAAAAAAAAAAAAAAAAAAAA==","time":1,"memory_kib":4294967295,"threads":1}}`,
		"unknown kdf":    `{"format":1,"kdf":{"name":"md5","salt":"AAAAAAAAAAAAAAAAAAAAAA=="}}`,
		"short salt":     `{"format":1,"kdf":{"name":"pbkdf2-sha256","salt":"AAAA","iterations":1000}}`,
		"few iterations": `{"format":1,"kdf":{"name":"pbkdf2-sha256","salt":"AAAAAAAAAAAAAAAAAAAAAA==","iterations":1}}`,
	} {
		st := memstore.New()
		_ = st.SaveKeyring(ctx, []byte(raw))
		m := master(t, 1)
		if strings.Contains(raw, "kdf") {
			m = cheap(t, "p", KDFPBKDF2SHA256)
		}
		if _, err := OpenKeyring(ctx, st, m); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}
