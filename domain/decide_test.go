package domain_test

import (
	"errors"
	"testing"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/suites/core"
)

var key32 = make([]byte, 32)

func live(name string, version, keyVersion uint64) domain.ClientView {
	return domain.ClientView{ID: domain.ClientID(name), Exists: true, Name: name, Role: domain.RoleBoth, Version: version, KeyVersion: keyVersion}
}

func TestDecideRefusals(t *testing.T) {
	a := domain.ClientID("a")
	topic := domain.TopicView{Hash: domain.TopicHash("t"), Exists: true, Name: "t", Version: 3, KeyVersion: 1}
	sk := domain.State{Mode: core.SymKey}
	pk := domain.State{Mode: core.PubKey, C2: domain.C2View{Exists: true, Version: 1, KeyVersion: 1}}
	withClient := func(st domain.State) domain.State { st.Client = live("a", 1, 1); return st }
	cases := []struct {
		name string
		st   domain.State
		cmd  domain.Command
		want error
	}{
		{"no mode", domain.State{}, domain.ResetClient{Client: a}, domain.ErrWrongMode},
		{"register bad name", sk, domain.RegisterClient{Client: a, Name: string([]byte{0xff}), Key: key32}, core.ErrInvalidName},
		{"register id mismatch", sk, domain.RegisterClient{Client: domain.ClientID("b"), Name: "a", Key: key32}, core.ErrInvalidName},
		{"register no key", sk, domain.RegisterClient{Client: a, Name: "a"}, core.ErrInvalidKey},
		{"register pk key in sk", sk, domain.RegisterClient{Client: a, Name: "a", PublicKey: key32}, domain.ErrWrongMode},
		{"register sk key in pk", pk, domain.RegisterClient{Client: a, Name: "a", Key: key32}, domain.ErrWrongMode},
		{"register bad role", sk, domain.RegisterClient{Client: a, Key: key32, Role: 9}, domain.ErrInvalidRole},
		{"remove unknown", sk, domain.RemoveClient{Client: a}, domain.ErrUnknownClient},
		{"reset unknown", sk, domain.ResetClient{Client: a}, domain.ErrUnknownClient},
		{"link unknown topic", withClient(sk), domain.LinkClients{Topic: topic.Hash, Clients: []domain.ID{a}}, domain.ErrUnknownTopic},
		{"link unknown client", domain.State{Mode: core.SymKey, Topic: topic, Targets: []domain.ClientView{{ID: a}}},
			domain.LinkClients{Topic: topic.Hash, Clients: []domain.ID{a}}, domain.ErrUnknownClient},
		{"unlink not linked", domain.State{Mode: core.SymKey, Topic: topic, Client: live("a", 1, 1)},
			domain.UnlinkClient{Topic: topic.Hash, Client: a}, domain.ErrNotLinked},
		{"unlink unknown topic", withClient(sk), domain.UnlinkClient{Topic: topic.Hash, Client: a}, domain.ErrUnknownTopic},
		{"topic wildcard", sk, domain.PutTopic{Topic: "a/#", Key: key32}, core.ErrInvalidTopic},
		{"topic empty", sk, domain.PutTopic{Topic: "", Key: key32}, core.ErrInvalidTopic},
		{"remove unknown topic", sk, domain.RemoveTopic{Topic: topic.Hash}, domain.ErrUnknownTopic},
		{"client key in pk", withClient(pk), domain.RotateClientKey{Client: a, Key: key32}, domain.ErrWrongMode},
		{"client key unknown", sk, domain.RotateClientKey{Client: a, Key: key32}, domain.ErrUnknownClient},
		{"pubkeys in sk", withClient(sk), domain.ResetClientPubKeys{Client: a}, domain.ErrWrongMode},
		{"send pubkey unknown src", withClient(pk), domain.SendClientPubKey{Dst: a, Src: domain.ClientID("b")}, domain.ErrUnknownClient},
		{"send pubkey in sk", withClient(sk), domain.SendClientPubKey{Dst: a, Src: a}, domain.ErrWrongMode},
		{"c2 key in sk", sk, domain.RotateC2Key{Public: key32, Private: key32}, domain.ErrWrongMode},
		{"pk op without c2 key", domain.State{Mode: core.PubKey, Client: live("a", 1, 1)}, domain.ResetClientPubKeys{Client: a}, domain.ErrNoC2Key},
		{"token exists", domain.State{Mode: core.SymKey, Token: domain.TokenView{Name: "x", Exists: true, Version: 1}},
			domain.CreateToken{Name: "x", Role: domain.TokenAdmin, Hash: [32]byte{1}}, domain.ErrAlreadyExists},
		{"token bad role", sk, domain.CreateToken{Name: "x", Hash: [32]byte{1}}, domain.ErrInvalidRole},
		{"revoke unknown", sk, domain.RevokeToken{Name: "x"}, domain.ErrUnknownToken},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := domain.Decide(c.st, c.cmd)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			var oe *domain.OpError
			if !errors.As(err, &oe) || oe.Op != c.cmd.Op() && c.name != "no mode" {
				t.Fatalf("not an *OpError of %s: %#v", c.cmd.Op(), err)
			}
		})
	}
}

func TestRotationOrderConsumersFirst(t *testing.T) {
	members := []domain.Member{
		{Client: id(1), Role: domain.RolePublisher, KeyVersion: 1},
		{Client: id(2), Role: domain.RoleBoth, KeyVersion: 2},
		{Client: id(3), Role: domain.RoleConsumer, KeyVersion: 3},
		{Client: id(4), Role: domain.RolePublisher, KeyVersion: 4},
		{Client: id(5), Role: domain.RoleConsumer, KeyVersion: 5},
	}
	st := domain.State{Mode: core.SymKey, Topic: domain.TopicView{Hash: domain.TopicHash("t"), Exists: true, Version: 7, KeyVersion: 1, Members: members}}
	d, err := domain.Decide(st, domain.PutTopic{Topic: "t", Key: key32})
	if err != nil {
		t.Fatal(err)
	}
	if d.Expected != 7 || d.Stream != domain.TopicStream(domain.TopicHash("t")) || len(d.Events) != 2 {
		t.Fatalf("decision %+v", d)
	}
	if _, ok := d.Events[0].(*domain.TopicKeyRotated); !ok {
		t.Fatalf("first event %T", d.Events[0])
	}
	q := d.Events[1].(*domain.CommandQueued)
	if q.Code != core.CmdSetTopicKey || q.TopicKeyVersion != 8 {
		t.Fatalf("queued %+v", q)
	}
	want := []byte{3, 5, 2, 1, 4}
	for i, r := range q.Recipients {
		if r.Client != id(want[i]) || r.KeyVersion != uint64(want[i]) {
			t.Fatalf("recipient %d = %v, want client %d", i, r, want[i])
		}
	}
}

func TestCreateTopicQueuesNothing(t *testing.T) {
	d, err := domain.Decide(domain.State{Mode: core.SymKey}, domain.PutTopic{Topic: "t", Key: key32})
	if err != nil {
		t.Fatal(err)
	}
	if d.Expected != 0 || len(d.Events) != 1 || d.Events[0].EventType() != domain.TypeTopicCreated {
		t.Fatalf("decision %+v", d)
	}
}

func TestSetIDKeyUsesOldKey(t *testing.T) {
	st := domain.State{Mode: core.SymKey, Client: live("a", 5, 3)}
	d, err := domain.Decide(st, domain.RotateClientKey{Client: domain.ClientID("a"), Key: key32})
	if err != nil {
		t.Fatal(err)
	}
	q := d.Events[1].(*domain.CommandQueued)
	if q.Code != core.CmdSetIDKey || q.SubjectKeyVersion != 6 || q.Recipients[0].KeyVersion != 3 {
		t.Fatalf("SetIdKey %+v: want new key v6 protected by v3", q)
	}
}

func TestSetC2KeyUsesOldPair(t *testing.T) {
	st := domain.State{Mode: core.PubKey, C2: domain.C2View{Exists: true, Version: 4, KeyVersion: 3},
		Clients: []domain.Member{{Client: id(1), KeyVersion: 1}, {Client: id(2), KeyVersion: 2}}}
	d, err := domain.Decide(st, domain.RotateC2Key{Public: key32, Private: key32})
	if err != nil {
		t.Fatal(err)
	}
	q := d.Events[1].(*domain.CommandQueued)
	if d.Stream != domain.C2KeyStream || q.Code != core.CmdSetC2Key || q.C2KeyVersion != 3 || q.NewC2KeyVersion != 5 || len(q.Recipients) != 2 {
		t.Fatalf("SetC2Key %+v", q)
	}
	// The first pair queues nothing.
	d, err = domain.Decide(domain.State{Mode: core.PubKey}, domain.RotateC2Key{Public: key32, Private: key32})
	if err != nil || len(d.Events) != 1 {
		t.Fatalf("first pair: %v %+v", err, d)
	}
}

func TestLinkAndUnlinkOrder(t *testing.T) {
	a, b := live("a", 1, 1), live("b", 2, 2)
	topic := domain.TopicView{Hash: domain.TopicHash("t"), Exists: true, Version: 2, KeyVersion: 1,
		Members: []domain.Member{{Client: a.ID, Role: domain.RoleBoth, KeyVersion: 1}}}
	d, err := domain.Decide(domain.State{Mode: core.SymKey, Topic: topic, Targets: []domain.ClientView{a, b, b}},
		domain.LinkClients{Topic: topic.Hash, Clients: []domain.ID{a.ID, b.ID, b.ID}})
	if err != nil {
		t.Fatal(err)
	}
	// a is already linked (key resent), b is linked once; the command
	// comes after the links.
	if len(d.Events) != 2 || d.Events[0].(*domain.TopicClientLinked).Client != b.ID {
		t.Fatalf("events %+v", d.Events)
	}
	q := d.Events[1].(*domain.CommandQueued)
	if len(q.Recipients) != 2 || q.TopicKeyVersion != 1 {
		t.Fatalf("queued %+v", q)
	}
	d, err = domain.Decide(domain.State{Mode: core.SymKey, Topic: topic, Client: a}, domain.UnlinkClient{Topic: topic.Hash, Client: a.ID})
	if err != nil {
		t.Fatal(err)
	}
	// RemoveTopic is queued while the client is still a member.
	if d.Events[0].(*domain.CommandQueued).Code != core.CmdRemoveTopic || d.Events[1].EventType() != domain.TypeTopicClientUnlinked {
		t.Fatalf("events %+v", d.Events)
	}
}
