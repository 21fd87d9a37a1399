package fips_test

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/fips"
)

// fuzzSeeds adds every recorded message of the vector file whose kind is in
// kinds (positive and negative), and fails when there is none: a fuzz target
// without seeds would silently test nothing in plain go test runs.
func fuzzSeeds(f *testing.F, v *vecFile, kinds ...string) {
	n := 0
	add := func(hexMsg string) {
		f.Add(unhex(f, hexMsg), int16(0))
		n++
	}
	for _, k := range kinds {
		switch k {
		case "sk":
			for _, c := range v.SK {
				add(c.Protected)
			}
		case "pk":
			for _, c := range v.PK {
				add(c.Protected)
			}
		case "command":
			for _, c := range v.Commands {
				add(c.Protected)
			}
		}
		for _, c := range v.Negative {
			if c.Kind == k {
				add(c.Protected)
			}
		}
	}
	if n == 0 {
		f.Fatalf("no fuzz seeds for %v in testdata/%s", kinds, vectorsFile)
	}
}

// fuzzNow is the receiver clock: the message's own timestamp moved by skew
// seconds, so that the fuzzer reaches the cryptographic checks as well as
// both sides of the window.
func fuzzNow(prot []byte, skew int16) time.Time {
	if len(prot) < 8 {
		return time.Unix(0, 0)
	}
	ts := int64(binary.LittleEndian.Uint64(prot) & (1<<62 - 1))
	return time.Unix(ts+int64(skew), 0)
}

// checkErr fails unless err is nil or wraps one of the protocol sentinels.
func checkErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error wraps no protocol sentinel: %v", err)
}

func FuzzUnprotect(f *testing.F) {
	v := loadVectors(f)
	fuzzSeeds(f, v, "sk", "command")
	s := fips.New()
	key := unhex(f, v.SK[0].Key)
	f.Fuzz(func(t *testing.T, prot []byte, skew int16) {
		plain, err := s.Unprotect(key, prot, fuzzNow(prot, skew), core.DefaultWindow())
		checkErr(t, err)
		if err == nil && len(plain) != len(prot)-fips.SKOverhead {
			t.Fatalf("plaintext of %d bytes from a %d-byte message", len(plain), len(prot))
		}
	})
}

func FuzzUnprotectSigned(f *testing.F) {
	v := loadVectors(f)
	fuzzSeeds(f, v, "pk")
	s := fips.New()
	c := v.PK[0]
	key, signerID, signerPub := unhex(f, c.TopicKey), c.SignerID, unhex(f, c.SignerPublic)
	lookup := func(id []byte) ([]byte, error) {
		if hexString(id) != signerID {
			return nil, core.ErrPubKeyNotFound
		}
		return signerPub, nil
	}
	f.Fuzz(func(t *testing.T, prot []byte, skew int16) {
		plain, sender, err := s.UnprotectSigned(key, prot, fuzzNow(prot, skew), core.DefaultWindow(), lookup)
		checkErr(t, err)
		if err == nil && (len(plain) != len(prot)-fips.PKOverhead || hexString(sender) != signerID) {
			t.Fatalf("accepted %d bytes: plaintext %d bytes, sender %x", len(prot), len(plain), sender)
		}
		if id, err := s.SenderID(prot); err == nil && len(id) != 16 {
			t.Fatalf("SenderID returned %d bytes", len(id))
		}
	})
}

func FuzzUnprotectCommand(f *testing.F) {
	v := loadVectors(f)
	fuzzSeeds(f, v, "command", "sk")
	s := fips.New()
	c := v.Commands[0]
	id, err := s.IdentityFromSeed(unhex(f, c.ClientSeed))
	if err != nil {
		f.Fatal(err)
	}
	c2Pub := unhex(f, c.C2Public)
	f.Fuzz(func(t *testing.T, prot []byte, skew int16) {
		cmd, err := s.UnprotectCommand(id, c2Pub, prot, fuzzNow(prot, skew), core.DefaultWindow())
		checkErr(t, err)
		if err == nil && len(cmd) != len(prot)-fips.CommandOverhead {
			t.Fatalf("command of %d bytes from a %d-byte message", len(cmd), len(prot))
		}
	})
}
