package eventcodec_test

import (
	"testing"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/eventcodec"
	"github.com/e4c2/e4c2/suites/core"
)

func TestEncodeDecisionVersions(t *testing.T) {
	s := newFakeSealer()
	d, err := domain.Decide(domain.State{Mode: core.SymKey, Client: domain.ClientView{ID: domain.ClientID("a"), Exists: true, Name: "a", Role: domain.RoleBoth, Version: 5, KeyVersion: 3}},
		domain.RotateClientKey{Client: domain.ClientID("a"), Key: []byte{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	ids := 0
	evs, err := eventcodec.EncodeDecision(d, s, eventstore.Metadata{Actor: "system"}, func() string { ids++; return "id" })
	if err != nil || len(evs) != 2 || ids != 2 {
		t.Fatalf("%v %d", err, len(evs))
	}
	ev, _ := eventcodec.Decode(evs[0].Type, evs[0].Data)
	sec, _ := domain.SecretOf(ev)
	k, err := eventcodec.OpenSecret(s, sec, domain.ClientStream(domain.ClientID("a")), 6, evs[0].Type)
	if err != nil || string(k) != "\x01\x02\x03" {
		t.Fatalf("sealed for the wrong version: %v", err)
	}
	// A decision with Expected = Any cannot carry a key.
	d.Expected = -1
	d.Events = []domain.Event{&domain.ClientKeyRotated{Client: id(1), Key: domain.NewSecret([]byte{1})}}
	if _, err := eventcodec.EncodeDecision(d, s, eventstore.Metadata{Actor: "system"}, func() string { return "x" }); err == nil {
		t.Fatal("key encoded without a known version")
	}
}
