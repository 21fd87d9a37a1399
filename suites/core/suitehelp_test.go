package core

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// testIdentity is the shape of a suite identity: key bytes, redaction and
// a client binding.
type testIdentity struct {
	key []byte
	Redacted[testIdentity]
	ClientBinding
}

func (t *testIdentity) Bytes() []byte            { return bytes.Clone(t.key) }
func (t *testIdentity) PublicKey() []byte        { return nil }
func (t *testIdentity) SigningPublicKey() []byte { return nil }

// otherIdentity is a wrapper of another type, as a caller might pass.
type otherIdentity struct{ Identity }

func TestRedacted(t *testing.T) {
	id := &testIdentity{key: []byte("secret-key-bytes")}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		got := fmt.Sprintf(verb, id)
		if got != "core.testIdentity(redacted)" {
			t.Errorf("%s printed %q", verb, got)
		}
	}
}

func TestWithClientID(t *testing.T) {
	id := &testIdentity{key: []byte("k")}
	cid := HashID([]byte("alice"))
	bound, err := WithClientID(id, cid)
	if err != nil {
		t.Fatal(err)
	}
	if id.ClientID() != nil {
		t.Fatal("WithClientID changed its receiver")
	}
	got := bound.ClientID()
	if !bytes.Equal(got, cid) {
		t.Fatalf("ClientID = %x", got)
	}
	got[0] ^= 1
	cid[1] ^= 1
	if !bytes.Equal(bound.ClientID(), HashID([]byte("alice"))) {
		t.Fatal("ClientID shares memory with the caller")
	}
	if _, err := WithClientID(id, []byte("short")); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("short id: %v", err)
	}
}

func TestBindIdentity(t *testing.T) {
	cid := HashID([]byte("bob"))
	parse := func(priv []byte) (Identity, error) {
		if len(priv) != 1 {
			return nil, fmt.Errorf("%w: bad length", ErrInvalidKey)
		}
		return &testIdentity{key: bytes.Clone(priv)}, nil // priv is wiped after the call
	}
	own := &testIdentity{key: []byte("k")}
	for name, in := range map[string]Identity{"own": own, "wrapper": otherIdentity{own}} {
		b, err := BindIdentity[testIdentity]("test", in, cid, parse)
		if err != nil || !bytes.Equal(b.ClientID(), cid) || !bytes.Equal(b.Bytes(), []byte("k")) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for name, in := range map[string]Identity{
		"nil":            nil,
		"typed nil":      (*testIdentity)(nil),
		"does not parse": otherIdentity{&testIdentity{key: []byte("too long")}},
	} {
		if _, err := BindIdentity[testIdentity]("test", in, cid, parse); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: %v, want ErrInvalidKey", name, err)
		}
	}
}

func TestCheckKeyLen(t *testing.T) {
	if err := CheckKeyLen("topic key", make([]byte, 32), 32); err != nil {
		t.Fatal(err)
	}
	err := CheckKeyLen("topic key", make([]byte, 31), 32)
	if !errors.Is(err, ErrInvalidKey) || err.Error() != "e4: invalid key: topic key must be 32 bytes, got 31" {
		t.Fatalf("err = %v", err)
	}
}

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey("test")
	if err != nil || len(a) != KeyLen {
		t.Fatalf("%x, %v", a, err)
	}
	if b, _ := GenerateKey("test"); bytes.Equal(a, b) {
		t.Fatal("two keys are equal")
	}
}

func TestAsOwn(t *testing.T) {
	usable := func(v *testIdentity) bool { return v.key != nil }
	parse := func(b []byte) (*testIdentity, error) { return &testIdentity{key: b}, nil }
	own := &testIdentity{key: []byte("k")}
	if got, err := AsOwn(Identity(own), "identity", usable, parse); err != nil || got != own {
		t.Fatalf("own key: %v, %v", got, err)
	}
	if got, err := AsOwn(Identity(otherIdentity{own}), "identity", usable, parse); err != nil || string(got.key) != "k" || got == own {
		t.Fatalf("wrapper: %v, %v", got, err)
	}
	for name, in := range map[string]Identity{"nil": nil, "typed nil": (*testIdentity)(nil), "zero value": &testIdentity{}} {
		if _, err := AsOwn(in, "identity", usable, parse); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: %v, want ErrInvalidKey", name, err)
		}
	}
}
