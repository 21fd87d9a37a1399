package standard_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/standard"
)

// fuzzWindow is wide enough that fuzzed messages get past the window check
// often, and asymmetric so both window errors stay reachable.
var fuzzWindow = core.Window{MaxAge: 24 * time.Hour, MaxSkew: time.Hour}

var protocolErrors = []error{
	core.ErrInvalidProtectedLen, core.ErrTooShortCiphertext, core.ErrInvalidSignature,
	core.ErrNotAuthentic, core.ErrTimestampInFuture, core.ErrTimestampTooOld,
	core.ErrPubKeyNotFound, core.ErrInvalidKey,
}

func requireProtocolError(t *testing.T, err error) {
	t.Helper()
	for _, e := range protocolErrors {
		if errors.Is(err, e) {
			return
		}
	}
	t.Fatalf("error %v wraps no protocol sentinel", err)
}

// seeded fails the fuzz test when the vector file yields no seeds: a
// fuzzer without its corpus would pass while testing almost nothing.
func seeded(f *testing.F, n int) {
	f.Helper()
	if n == 0 {
		f.Fatal("no fuzz seeds found in the vector file")
	}
}

func FuzzUnprotect(f *testing.F) {
	v := loadVectors(f)
	n := 0
	for _, m := range v.SKMessages {
		f.Add([]byte(m.TopicKey), []byte(m.Protected), m.Timestamp)
		n++
	}
	for _, m := range v.Negative {
		if m.Mode == "sk" {
			k := m.TopicKey
			if m.Kind == "command" {
				k = m.ReceiverKey
			}
			f.Add([]byte(k), []byte(m.Protected), m.NowUnix)
			n++
		}
	}
	for _, m := range v.Window {
		if m.Mode == "sk" {
			f.Add([]byte(m.TopicKey), []byte(m.Protected), m.NowUnix)
			n++
		}
	}
	seeded(f, n)
	s := standard.New()
	f.Fuzz(func(t *testing.T, key, protected []byte, now int64) {
		plain, err := s.Unprotect(key, protected, time.Unix(now, 0), fuzzWindow)
		if err != nil {
			requireProtocolError(t, err)
			return
		}
		// AES-SIV is deterministic: anything accepted is exactly what
		// Protect makes of the plaintext at the message's timestamp.
		ts := time.Unix(int64(leUint64(protected)), 0)
		again, err := s.Protect(key, plain, ts)
		if err != nil || !bytes.Equal(again, protected) {
			t.Fatalf("accepted message does not re-protect to itself: %v", err)
		}
	})
}

func FuzzUnprotectSigned(f *testing.F) {
	v := loadVectors(f)
	n := 0
	for _, m := range v.PKMessages {
		f.Add([]byte(m.TopicKey), []byte(m.Protected), m.Timestamp, []byte(m.SignerPub))
		n++
	}
	pubs := pubDirectory(v)
	for _, m := range v.Negative {
		if m.Mode == "pk" && m.Kind == "message" {
			for _, pub := range m.PubKeys {
				f.Add([]byte(m.TopicKey), []byte(m.Protected), m.NowUnix, []byte(pub))
				n++
			}
		}
	}
	for _, m := range v.Window {
		if m.Mode == "pk" && len(m.Protected) > 24 {
			f.Add([]byte(m.TopicKey), []byte(m.Protected), m.NowUnix, pubs[string(m.Protected[8:24])])
			n++
		}
	}
	seeded(f, n)
	s := standard.New()
	f.Fuzz(func(t *testing.T, key, protected []byte, now int64, pub []byte) {
		signer := func(id []byte) ([]byte, error) {
			if len(pub) == 0 {
				return nil, core.ErrPubKeyNotFound
			}
			return pub, nil
		}
		plain, sender, err := s.UnprotectSigned(key, protected, time.Unix(now, 0), fuzzWindow, signer)
		if err != nil {
			requireProtocolError(t, err)
			return
		}
		n := len(protected)
		if n < standard.PKOverhead || !bytes.Equal(sender, protected[8:24]) {
			t.Fatalf("accepted a %d-byte message with sender %x", n, sender)
		}
		if !ed25519.Verify(pub, protected[:n-64], protected[n-64:]) {
			t.Fatal("accepted a message whose signature does not verify")
		}
		// The SIV part is the SK encryption under the topic key.
		sk := append(bytes.Clone(protected[:8]), protected[24:n-64]...)
		again, err := s.Protect(key, plain, time.Unix(int64(leUint64(protected)), 0))
		if err != nil || !bytes.Equal(again, sk) {
			t.Fatalf("accepted message does not re-encrypt to itself: %v", err)
		}
	})
}

func FuzzUnprotectCommand(f *testing.F) {
	v := loadVectors(f)
	var id *standard.Identity
	n := 0
	for _, m := range v.Negative {
		if m.Mode == "pk" && m.Kind == "command" {
			if id == nil {
				var err error
				if id, err = standard.ParsePrivateKey(m.ReceiverEd); err != nil {
					f.Fatal(err)
				}
			}
			f.Add([]byte(m.C2Public), []byte(m.Protected), m.NowUnix)
			n++
		}
	}
	for _, a := range v.Agreement {
		f.Add([]byte(a.C2Public), []byte(nil), int64(1_700_000_000))
		n++
	}
	seeded(f, n)
	if id == nil {
		f.Fatal("no PK command receiver in the vector file")
	}
	s := standard.New()
	// A valid command under the first agreement vector's C2 key, so the
	// fuzzer starts from a message that opens.
	c2, err := standard.NewC2Key(v.Agreement[0].C2Private)
	if err != nil {
		f.Fatal(err)
	}
	valid, err := s.ProtectCommand(c2, id.PublicKey(), []byte{0x01}, time.Unix(1_700_000_000, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c2.PublicKey(), valid, int64(1_700_000_000))
	f.Fuzz(func(t *testing.T, c2Pub, protected []byte, now int64) {
		plain, err := s.UnprotectCommand(id, c2Pub, protected, time.Unix(now, 0), fuzzWindow)
		if err != nil {
			requireProtocolError(t, err)
			return
		}
		key, err := s.ClientCommandKey(id, c2Pub)
		if err != nil {
			t.Fatalf("command opened but the client key fails: %v", err)
		}
		again, err := s.Protect(key, plain, time.Unix(int64(leUint64(protected)), 0))
		if err != nil || !bytes.Equal(again, protected) {
			t.Fatalf("accepted command does not re-protect to itself: %v", err)
		}
	})
}

func leUint64(b []byte) uint64 {
	var x uint64
	for i := 7; i >= 0; i-- {
		x = x<<8 | uint64(b[i])
	}
	return x
}
