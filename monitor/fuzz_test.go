package monitor

import (
	"bytes"
	"testing"
	"time"
)

// FuzzClassify feeds arbitrary payloads to the classifier of every suite
// and mode: it must never panic, and only a message authentic under one of
// the topic's keys may come out with a key version.
func FuzzClassify(f *testing.F) {
	fx := fixtures(f)
	seeds := 0
	for _, x := range fx {
		for _, k := range []Key{x.keys.Current, x.keys.Previous, x.keys.Older[0]} {
			for _, who := range []string{"alice", "bob", "carol", "mallory"} {
				if x.mode.String() == "sk" && who != "alice" {
					continue
				}
				p := x.protect(f, k, who, []byte("seed message"), x.now)
				f.Add(p)
				seeds++
			}
		}
	}
	for _, s := range []string{"", "{}", "plain text", "\x00\x00\x00\x00\x00\x00\x00\x00"} {
		f.Add([]byte(s))
	}
	if seeds == 0 {
		f.Fatal("no seeds")
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, x := range fx {
			v := x.cls.Classify(x.keys, x.signer, payload, x.now)
			if v.Class >= numClasses {
				t.Fatalf("%s: invalid class %d", x.name, v.Class)
			}
			if v.Class == ClassPlaintext && bytes.IndexByte(payload, 0) >= 0 {
				t.Fatalf("%s: plaintext with a NUL byte", x.name)
			}
			if v.KeyVersion != 0 && (v.Class == ClassForged || v.Class == ClassPlaintext || v.Class == ClassUnknownSigner) {
				t.Fatalf("%s: %s with key version %d", x.name, v.Class, v.KeyVersion)
			}
			_ = v.Timestamp.After(time.Time{})
		}
	})
}
