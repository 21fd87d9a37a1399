package client

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/pq"
	"github.com/e4c2/e4c2/suites/standard"
)

func TestNewConfigErrors(t *testing.T) {
	s := standard.New()
	key := bytes.Repeat([]byte{1}, 32)
	c2, err := s.GenerateC2Key()
	if err != nil {
		t.Fatal(err)
	}
	ident, err := s.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  Config
		want error
	}{
		{"no suite", Config{Mode: core.SymKey, Name: "a", Key: key}, ErrInvalidConfig},
		{"no mode", Config{Suite: s, Name: "a", Key: key}, ErrInvalidConfig},
		{"pq in SK", Config{Suite: pq.New(), Mode: core.SymKey, Name: "a", Key: key}, ErrInvalidConfig},
		{"no name", Config{Suite: s, Mode: core.SymKey, Key: key}, ErrInvalidConfig},
		{"bad name", Config{Suite: s, Mode: core.SymKey, Name: "\xff", Key: key}, ErrInvalidName},
		{"short id", Config{Suite: s, Mode: core.SymKey, ID: []byte{1, 2, 3}, Key: key}, ErrInvalidName},
		{"id/name mismatch", Config{Suite: s, Mode: core.SymKey, Name: "a", ID: make([]byte, 16), Key: key}, ErrInvalidConfig},
		{"no key", Config{Suite: s, Mode: core.SymKey, Name: "a"}, ErrInvalidConfig},
		{"short key", Config{Suite: s, Mode: core.SymKey, Name: "a", Key: key[:31]}, ErrInvalidKey},
		{"zero key", Config{Suite: s, Mode: core.SymKey, Name: "a", Key: make([]byte, 32)}, ErrInvalidKey},
		{"key and password", Config{Suite: s, Mode: core.SymKey, Name: "a", Key: key, Password: "0123456789abcdef"}, ErrInvalidConfig},
		{"c2 key in SK", Config{Suite: s, Mode: core.SymKey, Name: "a", Key: key, C2PublicKey: c2.PublicKey()}, ErrInvalidConfig},
		{"PK without c2 key", Config{Suite: s, Mode: core.PubKey, Name: "a", Key: ident.Bytes()}, ErrInvalidKey},
		{"PK with SK key", Config{Suite: s, Mode: core.PubKey, Name: "a", Key: key, C2PublicKey: c2.PublicKey()}, ErrInvalidKey},
		{"negative window", Config{Suite: s, Mode: core.SymKey, Name: "a", Key: key, Window: core.Window{MaxAge: -1}}, ErrInvalidConfig},
		{"negative transition", Config{Suite: s, Mode: core.SymKey, Name: "a", Key: key, Transition: -1}, ErrInvalidConfig},
		{"bad signer policy", Config{Suite: s, Mode: core.SymKey, Name: "a", Key: key, UnknownSigner: 9}, ErrInvalidConfig},
	}
	for _, c := range cases {
		cl, err := New(c.cfg)
		if !errors.Is(err, c.want) || cl != nil {
			t.Errorf("%s: New = %v, %v; want %v", c.name, cl, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), hex.EncodeToString(key)) {
			t.Errorf("%s: error contains key bytes", c.name)
		}
	}
	// Defaults.
	cl, err := New(Config{Suite: s, Mode: core.SymKey, Name: "a", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if cl.set.window != core.DefaultWindow() || cl.set.transition != DefaultTransition || cl.set.clock == nil {
		t.Fatalf("defaults not applied: %+v", cl.set)
	}
	if cl.PublicKey() != nil || cl.SigningPublicKey() != nil || cl.Mode() != core.SymKey || cl.Suite() != s {
		t.Fatal("SK accessors")
	}
}

// TestPasswordIdentity derives device keys from a password as the
// reference tools do (vectors password_keys / client_state).
func TestPasswordIdentity(t *testing.T) {
	v := loadVectors(t)
	s := standard.New()
	// The reference tool names each state after the call that made it,
	// "SymNameAndPassword{name, password}" and
	// "PubNameAndPassword{name, password, C2=...}": the name and the
	// password come from there, so the test follows the vector file.
	var stateSK, statePK []byte
	var name, password string
	for _, cs := range v.ClientState {
		var kind string
		switch {
		case strings.HasPrefix(cs.Description, "SymNameAndPassword"):
			stateSK, kind = []byte(cs.SavedBytes), "SK"
		case strings.HasPrefix(cs.Description, "PubNameAndPassword"):
			statePK, kind = []byte(cs.SavedBytes), "PK"
		default:
			continue
		}
		n, pw, err := nameAndPassword(cs.Description)
		if err != nil {
			t.Fatalf("%s password vector: %v", kind, err)
		}
		if name != "" && (n != name || pw != password) {
			t.Fatalf("the SK and PK password vectors name different devices: %q and %q", name, n)
		}
		name, password = n, pw
	}
	if stateSK == nil || statePK == nil {
		t.Fatal("password client_state vectors not found")
	}
	sk, err := New(Config{Suite: s, Mode: core.SymKey, Name: name, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	want, err := ImportE4GoState(stateSK, s)
	if err != nil {
		t.Fatal(err)
	}
	if !statesEqual(sk.State(), want.State()) {
		t.Fatal("SK password client differs from the reference")
	}
	want, err = ImportE4GoState(statePK, s)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := New(Config{Suite: s, Mode: core.PubKey, Name: name, Password: password,
		C2PublicKey: want.State().C2PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	if !statesEqual(pk.State(), want.State()) {
		t.Fatal("PK password client differs from the reference")
	}
	_, err = New(Config{Suite: s, Mode: core.SymKey, Name: name, Password: "short password!"})
	wantErr(t, err, ErrInvalidPassword, "short password")
}

// nameAndPassword reads the device name and password out of a client_state
// vector's description, "...{name, password[, more]}".
func nameAndPassword(desc string) (name, password string, err error) {
	_, args, ok := strings.Cut(desc, "{")
	args, closed := strings.CutSuffix(args, "}")
	if !ok || !closed {
		return "", "", fmt.Errorf("description %q: no {name, password}", desc)
	}
	fields := strings.Split(args, ", ")
	if len(fields) < 2 || fields[0] == "" || fields[1] == "" {
		return "", "", fmt.Errorf("description %q: no {name, password}", desc)
	}
	return fields[0], fields[1], nil
}
