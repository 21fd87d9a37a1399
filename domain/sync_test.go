package domain_test

import (
	"errors"
	"testing"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/suites/core"
)

func TestRecordDeliveryGrades(t *testing.T) {
	a := domain.ClientID("a")
	ref := domain.QueueRef{Event: id(1), Index: 2}
	st := domain.State{Mode: core.SymKey}
	d, err := domain.Decide(st, domain.RecordDelivery{Client: a, Ref: ref})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Events[0].(*domain.CommandDelivered); !ok || d.Events[0].EventType().WireName() != "command.delivered.v1" {
		t.Fatalf("accepted: %#v", d.Events[0])
	}
	d, err = domain.Decide(st, domain.RecordDelivery{Client: a, Ref: ref, Confirmed: true})
	if err != nil {
		t.Fatal(err)
	}
	e, ok := d.Events[0].(*domain.CommandConfirmed)
	if !ok || e.Ref != ref || e.Client != a || d.Stream != domain.DeliveryStream(a) || d.Expected != -1 {
		t.Fatalf("confirmed: %#v %+v", d.Events[0], d)
	}
	if e.EventType().WireName() != "command.confirmed.v1" {
		t.Fatalf("wire name %s", e.EventType().WireName())
	}
	if _, err := domain.Decide(st, domain.RecordDelivery{Client: a, Ref: ref, Confirmed: true, Failed: true}); !errors.Is(err, domain.ErrInvalidCommand) {
		t.Fatalf("confirmed and failed: %v", err)
	}
}

func TestRecordSeenOnlyFirst(t *testing.T) {
	a := domain.ClientID("a")
	st := domain.State{Mode: core.SymKey}
	if _, err := domain.Decide(st, domain.RecordSeen{Client: a}); !errors.Is(err, domain.ErrUnknownClient) {
		t.Fatalf("unknown client: %v", err)
	}
	st.Client = live("a", 1, 1)
	d, err := domain.Decide(st, domain.RecordSeen{Client: a, SessionPresent: true})
	if err != nil || len(d.Events) != 1 {
		t.Fatalf("first: %v %+v", err, d)
	}
	if e := d.Events[0].(*domain.DeviceSeen); !e.SessionPresent || e.Client != a || d.Stream != domain.DeliveryStream(a) {
		t.Fatalf("event %#v", e)
	}
	st.Client.Seen = true
	d, err = domain.Decide(st, domain.RecordSeen{Client: a})
	if err != nil || len(d.Events) != 0 {
		t.Fatalf("second sighting: %v %+v", err, d)
	}
}

func queued(t *testing.T, d domain.Decision) []*domain.CommandQueued {
	t.Helper()
	var out []*domain.CommandQueued
	for _, ev := range d.Events {
		out = append(out, ev.(*domain.CommandQueued))
	}
	return out
}

func TestResyncSK(t *testing.T) {
	a := domain.ClientID("a")
	t1, t2, t3 := domain.TopicHash("t1"), domain.TopicHash("t2"), domain.TopicHash("t3")
	st := domain.State{Mode: core.SymKey, Client: live("a", 7, 5), Sync: domain.SyncView{
		HeldKeyVersion: 1,
		Topics: []domain.TopicHeld{
			{Topic: t1, KeyVersion: 3, Held: 3}, // held
			{Topic: t2, KeyVersion: 4, Held: 2}, // lacks
			{Topic: t3, KeyVersion: 2},          // lacks, already pending
		},
		Pending: []domain.PendingKey{{Code: core.CmdSetTopicKey, Topic: t3, Version: 2}},
	}}
	d, err := domain.Decide(st, domain.ResyncClient{Client: a})
	if err != nil {
		t.Fatal(err)
	}
	if d.Stream != domain.ClientStream(a) || d.Expected != 7 {
		t.Fatalf("decision %+v", d)
	}
	qs := queued(t, d)
	if len(qs) != 2 {
		t.Fatalf("%d commands, want SetIdKey and one SetTopicKey", len(qs))
	}
	// SetIdKey first, protected with the key the device holds (v1), not
	// the current one (v5).
	if q := qs[0]; q.Code != core.CmdSetIDKey || q.SubjectKeyVersion != 5 || q.Subject != a || q.Recipients[0].KeyVersion != 1 {
		t.Fatalf("SetIdKey %+v", q)
	}
	if q := qs[1]; q.Code != core.CmdSetTopicKey || q.Topic != t2 || q.TopicKeyVersion != 4 {
		t.Fatalf("SetTopicKey %+v", q)
	}

	// Full: everything, except what is already pending at that version.
	d, err = domain.Decide(st, domain.ResyncClient{Client: a, Full: true})
	if err != nil {
		t.Fatal(err)
	}
	qs = queued(t, d)
	if len(qs) != 3 || qs[0].Code != core.CmdSetIDKey || qs[1].Topic != t1 || qs[2].Topic != t2 {
		t.Fatalf("full: %d commands %+v", len(qs), qs)
	}

	// In sync: nothing.
	st.Sync = domain.SyncView{HeldKeyVersion: 5, Topics: []domain.TopicHeld{{Topic: t1, KeyVersion: 3, Held: 3}}}
	d, err = domain.Decide(st, domain.ResyncClient{Client: a})
	if err != nil || len(d.Events) != 0 {
		t.Fatalf("in sync: %v %+v", err, d)
	}
	// A pending SetIdKey of the current key is not duplicated.
	st.Sync = domain.SyncView{HeldKeyVersion: 1, Pending: []domain.PendingKey{{Code: core.CmdSetIDKey, Version: 5}}}
	d, err = domain.Decide(st, domain.ResyncClient{Client: a, Full: true})
	if err != nil || len(d.Events) != 0 {
		t.Fatalf("pending SetIdKey: %v %+v", err, d)
	}
	if _, err := domain.Decide(domain.State{Mode: core.SymKey}, domain.ResyncClient{Client: a}); !errors.Is(err, domain.ErrUnknownClient) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestResyncPK(t *testing.T) {
	a := domain.ClientID("a")
	t1 := domain.TopicHash("t1")
	st := domain.State{Mode: core.PubKey, Client: live("a", 2, 1), C2: domain.C2View{Exists: true, Version: 3, KeyVersion: 3},
		Sync: domain.SyncView{HeldC2KeyVersion: 1, Topics: []domain.TopicHeld{{Topic: t1, KeyVersion: 2, Held: 1}}}}
	d, err := domain.Decide(st, domain.ResyncClient{Client: a})
	if err != nil {
		t.Fatal(err)
	}
	qs := queued(t, d)
	if len(qs) != 2 {
		t.Fatalf("%d commands", len(qs))
	}
	if q := qs[0]; q.Code != core.CmdSetC2Key || q.NewC2KeyVersion != 3 || q.C2KeyVersion != 1 || len(q.Recipients) != 1 || q.Recipients[0].Client != a {
		t.Fatalf("SetC2Key %+v", q)
	}
	if q := qs[1]; q.Code != core.CmdSetTopicKey || q.TopicKeyVersion != 2 {
		t.Fatalf("SetTopicKey %+v", q)
	}
	for _, ev := range d.Events {
		if ev.(*domain.CommandQueued).Code == core.CmdSetIDKey {
			t.Fatal("SetIdKey in PK mode")
		}
	}
}

// TestResyncPKPubKeys: after the C2 key and before the topic keys, a PK
// resync sends the peer keys a device lacks (SetPubKey of the wanted
// version) and takes away those it should not hold (RemovePubKey); keys it
// holds as wanted, keys already pending and keys of removed peers are left
// alone, and Full sends every wanted and unwanted one of live peers.
func TestResyncPKPubKeys(t *testing.T) {
	a := domain.ClientID("a")
	t1 := domain.TopicHash("t1")
	p := func(n string) domain.ID { return domain.ClientID(n) }
	st := domain.State{Mode: core.PubKey, Client: live("a", 2, 1), C2: domain.C2View{Exists: true, Version: 3, KeyVersion: 3},
		Sync: domain.SyncView{HeldC2KeyVersion: 3, Topics: []domain.TopicHeld{{Topic: t1, KeyVersion: 2, Held: 1}},
			PubKeys: []domain.PubKeyHeld{
				{Peer: p("lacks"), PeerLive: true, Desired: 4, Held: 0},
				{Peer: p("old"), PeerLive: true, Desired: 5, Held: 2},
				{Peer: p("holds"), PeerLive: true, Desired: 1, Held: 1},
				{Peer: p("unwanted"), PeerLive: true, Desired: 0, Held: 3},
				{Peer: p("gone"), PeerLive: false, Desired: 2, Held: 0},
				{Peer: p("pending"), PeerLive: true, Desired: 7, Held: 6},
			},
			Pending: []domain.PendingKey{{Code: core.CmdSetPubKey, Subject: p("pending"), Version: 7}}}}
	d, err := domain.Decide(st, domain.ResyncClient{Client: a})
	if err != nil {
		t.Fatal(err)
	}
	type cmd struct {
		code core.CommandCode
		peer domain.ID
		v    uint64
	}
	var got []cmd
	for _, q := range queued(t, d) {
		got = append(got, cmd{q.Code, q.Subject, q.SubjectKeyVersion})
		if q.Code != core.CmdSetTopicKey && (q.C2KeyVersion != 3 || len(q.Recipients) != 1 || q.Recipients[0].Client != a) {
			t.Fatalf("command %+v", q)
		}
	}
	want := []cmd{{core.CmdSetPubKey, p("lacks"), 4}, {core.CmdSetPubKey, p("old"), 5}, {core.CmdRemovePubKey, p("unwanted"), 0},
		{core.CmdSetTopicKey, domain.ID{}, 0}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("command %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	d, err = domain.Decide(st, domain.ResyncClient{Client: a, Full: true})
	if err != nil {
		t.Fatal(err)
	}
	n := map[core.CommandCode]int{}
	for _, q := range queued(t, d) {
		n[q.Code]++
	}
	// Full: SetC2Key, SetPubKey of lacks/old/holds (pending is pending),
	// RemovePubKey of unwanted, the topic key.
	if n[core.CmdSetC2Key] != 1 || n[core.CmdSetPubKey] != 3 || n[core.CmdRemovePubKey] != 1 || n[core.CmdSetTopicKey] != 1 {
		t.Fatalf("full resync: %v", n)
	}
}
