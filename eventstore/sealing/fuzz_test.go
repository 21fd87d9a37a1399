package sealing

import (
	"testing"

	"github.com/e4c2/e4c2/eventstore/memstore"
)

// FuzzOpenKeyring feeds arbitrary stored keyrings to OpenKeyring: it must
// fail cleanly, never panic, and never open with the wrong key.
func FuzzOpenKeyring(f *testing.F) {
	st := memstore.New()
	m, _ := MasterKeyFromBytes(key(1))
	k, err := OpenKeyring(ctx, st, m)
	if err != nil {
		f.Fatal(err)
	}
	k.Close()
	seed, _ := st.LoadKeyring(ctx)
	f.Add(seed)
	f.Add([]byte(`{"format":1,"current":1,"deks":[{"id":1,"wrapped":"AAAA"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s := memstore.New()
		_ = s.SaveKeyring(ctx, raw)
		wrong, _ := MasterKeyFromBytes(key(2))
		if k, err := OpenKeyring(ctx, s, wrong); err == nil {
			// Only a keyring made under key(2) may open; the seeds are not.
			if _, err := k.Seal([]byte("x"), nil); err != nil {
				t.Fatalf("opened keyring cannot seal: %v", err)
			}
			k.Close()
		}
	})
}

// FuzzUnseal opens arbitrary sealed values: errors only, never a panic,
// and nothing opens unless it was sealed here.
func FuzzUnseal(f *testing.F) {
	st := memstore.New()
	m, _ := MasterKeyFromBytes(key(1))
	k, err := OpenKeyring(ctx, st, m)
	if err != nil {
		f.Fatal(err)
	}
	sealed, _ := k.Seal([]byte("secret"), []byte("ad"))
	f.Add(sealed, []byte("ad"))
	f.Add([]byte{1, 0, 0, 0, 1}, []byte{})
	f.Fuzz(func(t *testing.T, s, ad []byte) {
		if _, err := k.Open(s, ad); err == nil && (string(ad) != "ad" || string(s) != string(sealed)) {
			t.Fatal("a value that was never sealed opened")
		}
	})
}
