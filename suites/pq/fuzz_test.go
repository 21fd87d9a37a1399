package pq

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e4c2/e4c2/suites/core"
)

// execCounter counts the executions of a fuzz target in this process. When
// PQ_FUZZ_COUNT_DIR is set, every 1024 executions it writes the count to
// DIR/<target>.<pid>: on this machine "go test -fuzz" often reports a
// worker's executions only when the worker returns, which may not happen
// before -fuzztime ends, so its final "execs" line can be far too low.
type execCounter struct {
	name string
	n    atomic.Int64
}

func (c *execCounter) inc() {
	n := c.n.Add(1)
	dir := os.Getenv("PQ_FUZZ_COUNT_DIR")
	if dir == "" || n%1024 != 0 {
		return
	}
	path := filepath.Join(dir, fmt.Sprintf("%s.%d", c.name, os.Getpid()))
	_ = os.WriteFile(path, []byte(fmt.Sprintln(n)), 0o644)
}

// FuzzUnprotect feeds the symmetric layer. Accepted input must be exactly
// what Protect makes of the recovered plaintext (AES-SIV is deterministic),
// so the fuzzer cannot find a second accepted encoding.
func FuzzUnprotect(f *testing.F) {
	vf := loadVectors(f)
	if len(vf.SKMessages) == 0 {
		f.Fatal("no sk_messages seeds")
	}
	key := []byte(vf.SKMessages[0].TopicKey)
	now := time.Unix(vf.SKMessages[0].Timestamp, 0)
	for _, v := range vf.SKMessages {
		if !bytes.Equal(v.TopicKey, key) {
			f.Fatal("sk seeds use more than one key")
		}
		f.Add([]byte(v.Protected))
	}
	for _, v := range vf.Negative {
		if v.Kind == "sk" {
			f.Add([]byte(v.Protected))
		}
	}
	s := New()
	w := core.Window{MaxAge: time.Hour, MaxSkew: time.Hour}
	count := &execCounter{name: "FuzzUnprotect"}
	f.Fuzz(func(t *testing.T, p []byte) {
		count.inc()
		pt, err := s.Unprotect(key, p, now, w)
		if err != nil {
			return
		}
		again, err := s.Protect(key, pt, time.Unix(int64(leUint64(p)), 0))
		if err != nil || !bytes.Equal(again, p) {
			t.Fatalf("accepted %x, which Protect does not produce", p)
		}
	})
}

// FuzzUnprotectSigned feeds PK messages from two known signers. Accepted
// input must carry a known sender id and a body (ts | id | SIV | CT) that
// re-seals to itself; signatures cannot be forged, so in practice only the
// seeds pass, and the target's value is in the refusal paths (lengths,
// windows, lookups, signature and SIV decoding) never panicking.
func FuzzUnprotectSigned(f *testing.F) {
	vf := loadVectors(f)
	if len(vf.PKMessages) == 0 {
		f.Fatal("no pk_messages seeds")
	}
	keys := map[string][]byte{}
	for _, v := range vf.PKMessages {
		keys[string(v.SignerID)] = v.SignerPublic
		f.Add([]byte(v.Protected))
	}
	for _, v := range vf.Negative {
		if v.Kind == "pk" {
			f.Add([]byte(v.Protected))
		}
	}
	topicKey := []byte(vf.PKMessages[0].TopicKey)
	now := time.Unix(vf.PKMessages[0].Timestamp, 0)
	s := New()
	w := core.Window{MaxAge: time.Hour, MaxSkew: time.Hour}
	lookup := func(id []byte) ([]byte, error) {
		if k, ok := keys[string(id)]; ok {
			return k, nil
		}
		return nil, core.ErrPubKeyNotFound
	}
	count := &execCounter{name: "FuzzUnprotectSigned"}
	f.Fuzz(func(t *testing.T, p []byte) {
		count.inc()
		sid, idErr := s.SenderID(p)
		pt, sender, err := s.UnprotectSigned(topicKey, p, now, w, lookup)
		if err != nil {
			return
		}
		if idErr != nil || !bytes.Equal(sid, sender) {
			t.Fatalf("SenderID disagrees with UnprotectSigned")
		}
		if _, ok := keys[string(sender)]; !ok {
			t.Fatalf("accepted unknown sender %x", sender)
		}
		if len(pt) != len(p)-PKOverhead {
			t.Fatalf("plaintext length %d for %d-byte message", len(pt), len(p))
		}
		body, err := sealSIV(bytes.Clone(p[:pkSIVOff]), topicKey, p[:core.TimestampLen], pt)
		if err != nil || !bytes.Equal(body, p[:len(p)-SignatureSize]) {
			t.Fatalf("accepted body does not re-seal to itself")
		}
	})
}

// FuzzUnprotectCommand feeds commands to the client of the first command
// vector under its C2 key. Accepted input must decrypt to a command that,
// sealed again under the key from its own KEM ciphertext, gives the same
// bytes.
func FuzzUnprotectCommand(f *testing.F) {
	vf := loadVectors(f)
	if len(vf.Commands) == 0 {
		f.Fatal("no commands seeds")
	}
	first := vf.Commands[0]
	for _, v := range vf.Commands {
		f.Add([]byte(v.Protected))
	}
	for _, v := range vf.Negative {
		if v.Kind == "command" {
			f.Add([]byte(v.Protected))
		}
	}
	id, err := NewIdentityFromSeed(first.ClientSeed)
	if err != nil {
		f.Fatal(err)
	}
	c2Pub := []byte(first.C2Public)
	now := time.Unix(first.Timestamp, 0)
	s := New()
	w := core.Window{MaxAge: time.Hour, MaxSkew: time.Hour}
	count := &execCounter{name: "FuzzUnprotectCommand"}
	f.Fuzz(func(t *testing.T, p []byte) {
		count.inc()
		cmd, err := s.UnprotectCommand(id, c2Pub, p, now, w)
		if err != nil {
			return
		}
		if len(cmd) == 0 || len(cmd) != len(p)-CommandOverhead {
			t.Fatalf("command length %d for %d-byte input", len(cmd), len(p))
		}
		var ss [32]byte
		ct := p[cmdCTOff:cmdSIVOff]
		id.kemPriv.DecapsulateTo(ss[:], ct)
		key := commandKey(&ss, ct)
		body, err := sealSIV(bytes.Clone(p[:cmdSIVOff]), key[:], p[:core.TimestampLen], cmd)
		if err != nil || !bytes.Equal(body, p[:len(p)-SignatureSize]) {
			t.Fatalf("accepted command body does not re-seal to itself")
		}
	})
}

// FuzzKeys checks that no key input panics and that every refusal is
// ErrInvalidKey.
func FuzzKeys(f *testing.F) {
	vf := loadVectors(f)
	if len(vf.Identities) == 0 || len(vf.C2Keys) == 0 {
		f.Fatal("no key seeds")
	}
	for _, v := range vf.Identities {
		f.Add([]byte(v.PublicKey))
		f.Add([]byte(v.Seed))
	}
	for _, v := range vf.C2Keys {
		f.Add([]byte(v.PublicKey))
	}
	s := New()
	count := &execCounter{name: "FuzzKeys"}
	f.Fuzz(func(t *testing.T, k []byte) {
		count.inc()
		for _, err := range []error{s.CheckPublicKey(k), s.CheckC2PublicKey(k)} {
			if err != nil && !isInvalidKey(err) {
				t.Fatalf("refusal is not ErrInvalidKey: %v", err)
			}
		}
		if _, err := s.SigningPublicKey(k); err != nil && !isInvalidKey(err) {
			t.Fatal(err)
		}
		if _, err := s.ParseIdentity(k); err != nil && !isInvalidKey(err) {
			t.Fatal(err)
		}
		if _, err := s.ParseC2Key(k); err != nil && !isInvalidKey(err) {
			t.Fatal(err)
		}
	})
}
