package domain_test

import (
	"errors"
	"testing"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/suites/core"
)

// A creation never rekeys silently: Create refuses an existing client or
// topic, Rotate refuses a missing topic, and Replace does what a rotation
// does, keeping the role.
func TestNoSilentRekeying(t *testing.T) {
	a := domain.ClientID("a")
	existing := domain.ClientView{ID: a, Exists: true, Name: "a", Role: domain.RoleConsumer, Version: 4, KeyVersion: 3}
	sk := domain.State{Mode: core.SymKey, Client: existing}
	pk := domain.State{Mode: core.PubKey, Client: existing, C2: domain.C2View{Exists: true, Version: 1, KeyVersion: 1}}
	topic := domain.TopicView{Hash: domain.TopicHash("t"), Exists: true, Name: "t", Version: 3, KeyVersion: 1}

	refusals := []struct {
		name string
		st   domain.State
		cmd  domain.Command
		want error
	}{
		{"create existing client", sk, domain.RegisterClient{Client: a, Name: "a", Key: key32, Create: true}, domain.ErrClientExists},
		{"create existing pk client", pk, domain.RegisterClient{Client: a, Name: "a", PublicKey: key32, Create: true}, domain.ErrClientExists},
		{"replace changes role", sk, domain.RegisterClient{Client: a, Name: "a", Key: key32, Replace: true, Role: domain.RolePublisher}, domain.ErrInvalidRole},
		{"create and replace", sk, domain.RegisterClient{Client: a, Key: key32, Create: true, Replace: true}, domain.ErrInvalidCommand},
		{"create existing topic", domain.State{Mode: core.SymKey, Topic: topic}, domain.PutTopic{Topic: "t", Key: key32, Create: true}, domain.ErrTopicExists},
		{"rotate missing topic", domain.State{Mode: core.SymKey}, domain.PutTopic{Topic: "t", Key: key32, Rotate: true}, domain.ErrUnknownTopic},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			if _, err := domain.Decide(c.st, c.cmd); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	if !errors.Is(domain.ErrClientExists, domain.ErrAlreadyExists) || !errors.Is(domain.ErrTopicExists, domain.ErrAlreadyExists) {
		t.Fatal("the exists errors must wrap ErrAlreadyExists")
	}

	// SK replace: the rotation's events, SetIdKey under the key the device
	// holds (version 3), the new key at version 5.
	d, err := domain.Decide(sk, domain.RegisterClient{Client: a, Name: "a", Key: key32, Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Events) != 2 {
		t.Fatalf("events %+v", d.Events)
	}
	if _, ok := d.Events[0].(*domain.ClientKeyRotated); !ok {
		t.Fatalf("first event %T, want *ClientKeyRotated", d.Events[0])
	}
	q, ok := d.Events[1].(*domain.CommandQueued)
	if !ok || q.Code != core.CmdSetIDKey || q.Recipients[0].KeyVersion != 3 || q.SubjectKeyVersion != 5 {
		t.Fatalf("second event %+v", d.Events[1])
	}

	// PK replace: the public key is replaced, the role kept.
	d, err = domain.Decide(pk, domain.RegisterClient{Client: a, Name: "a", PublicKey: key32, Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	if ev, ok := d.Events[0].(*domain.ClientRegistered); !ok || ev.Role != domain.RoleConsumer {
		t.Fatalf("pk replace %+v", d.Events)
	}

	// Replace of a missing client registers it; Rotate of an existing topic
	// rotates it; Create of a missing topic creates it.
	if d, err := domain.Decide(domain.State{Mode: core.SymKey}, domain.RegisterClient{Client: a, Name: "a", Key: key32, Replace: true}); err != nil || len(d.Events) != 1 {
		t.Fatalf("replace missing: %v %+v", err, d.Events)
	}
	if d, err := domain.Decide(domain.State{Mode: core.SymKey, Topic: topic}, domain.PutTopic{Topic: "t", Key: key32, Rotate: true}); err != nil {
		t.Fatal(err)
	} else if _, ok := d.Events[0].(*domain.TopicKeyRotated); !ok {
		t.Fatalf("rotate %+v", d.Events)
	}
	if d, err := domain.Decide(domain.State{Mode: core.SymKey}, domain.PutTopic{Topic: "t", Key: key32, Create: true}); err != nil {
		t.Fatal(err)
	} else if _, ok := d.Events[0].(*domain.TopicCreated); !ok {
		t.Fatalf("create %+v", d.Events)
	}
}
