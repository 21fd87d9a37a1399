package core

import (
	"bytes"
	"errors"
	"testing"
)

type plainIdentity struct{}

func (plainIdentity) Bytes() []byte            { return make([]byte, 32) }
func (plainIdentity) PublicKey() []byte        { return nil }
func (plainIdentity) SigningPublicKey() []byte { return nil }

type boundIdentity struct {
	plainIdentity
	id []byte
}

func (b boundIdentity) ClientID() []byte { return b.id }

func TestSenderID(t *testing.T) {
	id := bytes.Repeat([]byte{7}, IDLen)
	got, err := SenderID(boundIdentity{id: id})
	if err != nil || !bytes.Equal(got, id) {
		t.Fatalf("bound identity: %x, %v", got, err)
	}
	for name, in := range map[string]Identity{
		"no ClientID method": plainIdentity{},
		"unbound":            boundIdentity{},
		"15-byte id":         boundIdentity{id: id[:15]},
		"nil":                nil,
	} {
		if _, err := SenderID(in); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: got %v, want ErrInvalidKey", name, err)
		}
	}
}
