package projections_test

import (
	"reflect"
	"testing"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

// TestPubKeySync walks the public keys a PK device is sent: desired,
// accepted and confirmed per peer through SetPubKey, a peer's key being
// replaced, RemovePubKey and ResetPubKeys, with the status, the resync
// view and a snapshot round trip checked on the way.
func TestPubKeySync(t *testing.T) {
	ks := projections.NewKeyState()
	g := newLogGen(func(r eventstore.Record) {
		if err := ks.Apply(r); err != nil {
			t.Fatal(err)
		}
	})
	a, b, c := domain.ClientID("a"), domain.ClientID("b"), domain.ClientID("c")
	pub := make([]byte, 32)
	g.add(domain.C2KeyStream, &domain.C2KeyGenerated{Public: pub, Private: domain.NewSecret(g.key)})
	for _, id := range []domain.ID{a, b, c} {
		g.add(domain.ClientStream(id), &domain.ClientRegistered{Client: id, Role: domain.RoleBoth, PublicKey: pub})
	}
	g.add(domain.DeliveryStream(a), &domain.DeviceSeen{Client: a})
	send := func(code core.CommandCode, peer domain.ID, v uint64) projections.Queued {
		t.Helper()
		g.add(domain.ClientStream(a), &domain.CommandQueued{Code: code, Subject: peer, SubjectKeyVersion: v, C2KeyVersion: 1,
			Recipients: []domain.Recipient{{Client: a, KeyVersion: 1}}})
		p := ks.Pending(a, 0)
		return p[len(p)-1]
	}
	pubkeys := func() []projections.PubKeySync {
		t.Helper()
		return syncOf(t, ks, a).PubKeys
	}
	row := func(peer domain.ID, d, acc, conf uint64) projections.PubKeySync {
		return projections.PubKeySync{Peer: peer, PeerLive: true, KeySync: projections.KeySync{Desired: d, Accepted: acc, Confirmed: conf}}
	}

	q := send(core.CmdSetPubKey, b, 1)
	if got := pubkeys(); !reflect.DeepEqual(got, []projections.PubKeySync{row(b, 1, 0, 0)}) {
		t.Fatalf("queued: %+v", got)
	}
	wantStatus(t, syncOf(t, ks, a), projections.SyncLagging, "")
	g.add(domain.DeliveryStream(a), &domain.CommandConfirmed{Client: a, Ref: q.Ref})
	if got := pubkeys(); !reflect.DeepEqual(got, []projections.PubKeySync{row(b, 1, 1, 1)}) {
		t.Fatalf("confirmed: %+v", got)
	}
	wantStatus(t, syncOf(t, ks, a), projections.SyncInSync, projections.EvidenceConfirmed)
	if h := ks.PubKeyHolders(b); len(h) != 1 || h[0] != a {
		t.Fatalf("holders of b: %v", h)
	}

	// b gets a new key (new_client --replace): a should hold it now.
	g.add(domain.ClientStream(b), &domain.ClientRegistered{Client: b, Role: domain.RoleBoth, PublicKey: pub})
	if got := pubkeys(); !reflect.DeepEqual(got, []projections.PubKeySync{row(b, 2, 1, 1)}) {
		t.Fatalf("after b's new key: %+v", got)
	}
	wantStatus(t, syncOf(t, ks, a), projections.SyncLagging, "")
	if v := ks.SyncView(a); !reflect.DeepEqual(v.PubKeys, []domain.PubKeyHeld{{Peer: b, PeerLive: true, Desired: 2, Held: 1}}) {
		t.Fatalf("resync view %+v", v.PubKeys)
	}
	// A SetPubKey decided before b's new key, ordered after it by the
	// log, must not take the wish back to the old key.
	stale := send(core.CmdSetPubKey, b, 1)
	if got := pubkeys(); got[0].Desired != 2 {
		t.Fatalf("a stale SetPubKey moved the desired version: %+v", got)
	}
	g.add(domain.DeliveryStream(a), &domain.CommandDelivered{Client: a, Ref: stale.Ref})
	wantStatus(t, syncOf(t, ks, a), projections.SyncLagging, "")
	q = send(core.CmdSetPubKey, b, 2)
	if v := ks.SyncView(a); len(v.Pending) != 1 || v.Pending[0] != (domain.PendingKey{Code: core.CmdSetPubKey, Subject: b, Version: 2}) {
		t.Fatalf("pending view %+v", v.Pending)
	}
	g.add(domain.DeliveryStream(a), &domain.CommandDelivered{Client: a, Ref: q.Ref})
	wantStatus(t, syncOf(t, ks, a), projections.SyncInSync, projections.EvidenceAccepted)

	// A second peer, then a snapshot: the image keeps every record.
	q = send(core.CmdSetPubKey, c, 1)
	g.add(domain.DeliveryStream(a), &domain.CommandConfirmed{Client: a, Ref: q.Ref})
	want := []projections.PubKeySync{row(b, 2, 2, 1), row(c, 1, 1, 1)}
	if got := pubkeys(); !reflect.DeepEqual(got, want) {
		t.Fatalf("two peers: %+v", got)
	}
	img, _, err := ks.EncodeState()
	if err != nil {
		t.Fatal(err)
	}
	back, err := projections.DecodeKeyState(img)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := back.DeviceSync(a); !reflect.DeepEqual(d.PubKeys, want) || !reflect.DeepEqual(back.PubKeyHolders(c), []domain.ID{a}) {
		t.Fatalf("after a snapshot: %+v", d.PubKeys)
	}

	// RemovePubKey: wanted gone at once, held until settled; then no row.
	q = send(core.CmdRemovePubKey, b, 0)
	if got := pubkeys(); !reflect.DeepEqual(got[0], row(b, 0, 2, 1)) {
		t.Fatalf("remove queued: %+v", got)
	}
	g.add(domain.DeliveryStream(a), &domain.CommandConfirmed{Client: a, Ref: q.Ref})
	if got := pubkeys(); !reflect.DeepEqual(got, []projections.PubKeySync{row(c, 1, 1, 1)}) {
		t.Fatalf("removed: %+v", got)
	}
	if h := ks.PubKeyHolders(b); len(h) != 0 {
		t.Fatalf("b still held by %v", h)
	}
	// ResetPubKeys lost on its way: a still holds c's key and should not.
	q = send(core.CmdResetPubKeys, domain.ID{}, 0)
	g.add(domain.DeliveryStream(a), &domain.CommandFailed{Client: a, Ref: q.Ref})
	if got := pubkeys(); !reflect.DeepEqual(got, []projections.PubKeySync{row(c, 0, 1, 1)}) {
		t.Fatalf("reset failed: %+v", got)
	}
	wantStatus(t, syncOf(t, ks, a), projections.SyncLagging, "")
	q = send(core.CmdRemovePubKey, c, 0)
	g.add(domain.DeliveryStream(a), &domain.CommandDelivered{Client: a, Ref: q.Ref})
	if got := pubkeys(); !reflect.DeepEqual(got, []projections.PubKeySync{row(c, 0, 0, 1)}) {
		t.Fatalf("removed, accepted only: %+v", got)
	}
	wantStatus(t, syncOf(t, ks, a), projections.SyncInSync, projections.EvidenceAccepted)

	// A re-registered device holds no public key the C2 knows of.
	q = send(core.CmdSetPubKey, c, 1)
	g.add(domain.DeliveryStream(a), &domain.CommandConfirmed{Client: a, Ref: q.Ref})
	g.add(domain.ClientStream(a), &domain.ClientRegistered{Client: a, Role: domain.RoleBoth, PublicKey: pub})
	if got := pubkeys(); !reflect.DeepEqual(got, []projections.PubKeySync{row(c, 1, 0, 0)}) {
		t.Fatalf("a re-registered: %+v", got)
	}
	// Removed, it keeps none.
	g.add(domain.ClientStream(a), &domain.ClientRemoved{Client: a})
	if h := ks.PubKeyHolders(c); len(h) != 0 {
		t.Fatalf("removed a still holds: %v", h)
	}
}
