package projections_test

import (
	"slices"
	"testing"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

func syncOf(t *testing.T, ks *projections.KeyState, id domain.ID) projections.DeviceSync {
	t.Helper()
	d, ok := ks.DeviceSync(id)
	if !ok {
		t.Fatal("no sync view")
	}
	return d
}

func wantStatus(t *testing.T, d projections.DeviceSync, status, evidence string) {
	t.Helper()
	if d.Status != status || d.Evidence != evidence {
		t.Fatalf("status %q/%q, want %q/%q (%+v)", d.Status, d.Evidence, status, evidence, d)
	}
}

// TestDeviceSyncLifecycle walks one SK device through registration, first
// connection, accepted and confirmed deliveries, a key rotation and a
// re-registration, checking desired against held at each step.
func TestDeviceSyncLifecycle(t *testing.T) {
	ks := projections.NewKeyState()
	g := newLogGen(func(r eventstore.Record) {
		if err := ks.Apply(r); err != nil {
			t.Fatal(err)
		}
	})
	a := domain.ClientID("a")
	h := domain.TopicHash("t")
	cs, ts, ds := domain.ClientStream(a), domain.TopicStream(h), domain.DeliveryStream(a)
	g.add(ts, &domain.TopicCreated{Topic: h, Name: "t", Key: domain.NewSecret(g.key)})
	g.add(cs, &domain.ClientRegistered{Client: a, Name: "a", Role: domain.RoleBoth, Key: domain.NewSecret(g.key)})
	g.add(ts, &domain.TopicClientLinked{Topic: h, Client: a})
	g.add(ts, &domain.CommandQueued{Code: core.CmdSetTopicKey, Topic: h, TopicKeyVersion: 1,
		Recipients: []domain.Recipient{{Client: a, KeyVersion: 1}}})
	linkRef := refOf(g.pos, 0)

	d := syncOf(t, ks, a)
	wantStatus(t, d, projections.SyncNeverSeen, "")
	if d.Seen || d.Pending != 1 || d.OldestPending.IsZero() || d.Identity != (projections.KeySync{Desired: 1, Accepted: 1, Confirmed: 1}) {
		t.Fatalf("registered: %+v", d)
	}
	if len(d.Topics) != 1 || d.Topics[0].Name != "t" || d.Topics[0].KeySync != (projections.KeySync{Desired: 1}) {
		t.Fatalf("topics %+v", d.Topics)
	}
	if f := ks.FleetSummary(); f != (projections.FleetSummary{Clients: 1, NeverSeen: 1, Pending: 1, Waiting: 1}) {
		t.Fatalf("fleet %+v", f)
	}

	g.add(ds, &domain.DeviceSeen{Client: a})
	firstSeen := g.t
	if live, seen := ks.Seen(a); !live || !seen {
		t.Fatal("not seen")
	}
	wantStatus(t, syncOf(t, ks, a), projections.SyncLagging, "")

	// Accepted by a broker: in sync, on the weaker grade.
	g.add(ds, &domain.CommandDelivered{Client: a, Ref: linkRef})
	d = syncOf(t, ks, a)
	wantStatus(t, d, projections.SyncInSync, projections.EvidenceAccepted)
	if d.Topics[0].KeySync != (projections.KeySync{Desired: 1, Accepted: 1}) || !d.FirstSeen.Equal(firstSeen) {
		t.Fatalf("accepted: %+v", d)
	}

	// A rotation: lagging until the device's session confirms it.
	g.add(ts, &domain.TopicKeyRotated{Topic: h, Key: domain.NewSecret(g.key)})
	kv := g.streams[ts]
	g.add(ts, &domain.CommandQueued{Code: core.CmdSetTopicKey, Topic: h, TopicKeyVersion: kv,
		Recipients: []domain.Recipient{{Client: a, KeyVersion: 1}}})
	rotRef := refOf(g.pos, 0)
	wantStatus(t, syncOf(t, ks, a), projections.SyncLagging, "")
	g.add(ds, &domain.CommandConfirmed{Client: a, Ref: rotRef})
	d = syncOf(t, ks, a)
	wantStatus(t, d, projections.SyncInSync, projections.EvidenceConfirmed)
	if d.Topics[0].KeySync != (projections.KeySync{Desired: kv, Accepted: kv, Confirmed: kv}) {
		t.Fatalf("confirmed: %+v", d.Topics[0])
	}

	// A second sighting changes nothing.
	g.add(ds, &domain.DeviceSeen{Client: a, SessionPresent: true})
	if d := syncOf(t, ks, a); !d.FirstSeen.Equal(firstSeen) {
		t.Fatalf("first seen moved to %v", d.FirstSeen)
	}

	// Client key rotation: the old key stays a credential until the
	// SetIdKey is accepted or confirmed.
	g.add(cs, &domain.ClientKeyRotated{Client: a, Key: domain.NewSecret(g.key)})
	g.add(cs, &domain.CommandQueued{Code: core.CmdSetIDKey, Subject: a, SubjectKeyVersion: 2,
		Recipients: []domain.Recipient{{Client: a, KeyVersion: 1}}})
	idRef := refOf(g.pos, 0)
	if vs, ok := ks.CredentialKeys(a); !ok || !slices.Equal(vs, []uint64{2, 1}) {
		t.Fatalf("credential keys %v %v", vs, ok)
	}
	v := ks.SyncView(a)
	if v.HeldKeyVersion != 1 || len(v.Pending) != 1 || v.Pending[0] != (domain.PendingKey{Code: core.CmdSetIDKey, Version: 2}) {
		t.Fatalf("sync view %+v", v)
	}
	d = syncOf(t, ks, a)
	if d.HeldKeyVersion != 1 || d.Identity != (projections.KeySync{Desired: 2, Accepted: 1, Confirmed: 1}) {
		t.Fatalf("rotating: %+v", d.Identity)
	}
	g.add(ds, &domain.CommandConfirmed{Client: a, Ref: idRef})
	if vs, _ := ks.CredentialKeys(a); !slices.Equal(vs, []uint64{2}) {
		t.Fatalf("after confirmation: %v", vs)
	}
	wantStatus(t, syncOf(t, ks, a), projections.SyncInSync, projections.EvidenceConfirmed)

	// Two rotations in a row: part-way through its queue the device
	// holds the middle key, which stays a credential too.
	g.add(cs, &domain.ClientKeyRotated{Client: a, Key: domain.NewSecret(g.key)})
	v3 := g.streams[cs]
	g.add(cs, &domain.CommandQueued{Code: core.CmdSetIDKey, Subject: a, SubjectKeyVersion: v3,
		Recipients: []domain.Recipient{{Client: a, KeyVersion: 2}}})
	r3 := refOf(g.pos, 0)
	g.add(cs, &domain.ClientKeyRotated{Client: a, Key: domain.NewSecret(g.key)})
	v5 := g.streams[cs]
	g.add(cs, &domain.CommandQueued{Code: core.CmdSetIDKey, Subject: a, SubjectKeyVersion: v5,
		Recipients: []domain.Recipient{{Client: a, KeyVersion: v3}}})
	r5 := refOf(g.pos, 0)
	if vs, _ := ks.CredentialKeys(a); !slices.Equal(vs, []uint64{v5, 2, v3}) {
		t.Fatalf("two rotations: %v", vs)
	}
	g.add(ds, &domain.CommandConfirmed{Client: a, Ref: r3})
	if vs, _ := ks.CredentialKeys(a); !slices.Equal(vs, []uint64{v5, v3}) {
		t.Fatalf("after the first SetIdKey: %v", vs)
	}
	g.add(ds, &domain.CommandConfirmed{Client: a, Ref: r5})
	if vs, _ := ks.CredentialKeys(a); !slices.Equal(vs, []uint64{v5}) {
		t.Fatalf("after the second SetIdKey: %v", vs)
	}

	// A failed command is no evidence.
	g.add(ts, &domain.TopicKeyRotated{Topic: h, Key: domain.NewSecret(g.key)})
	kv = g.streams[ts]
	g.add(ts, &domain.CommandQueued{Code: core.CmdSetTopicKey, Topic: h, TopicKeyVersion: kv,
		Recipients: []domain.Recipient{{Client: a, KeyVersion: 2}}})
	g.add(ds, &domain.CommandFailed{Client: a, Ref: refOf(g.pos, 0), Reason: "gave up"})
	d = syncOf(t, ks, a)
	wantStatus(t, d, projections.SyncLagging, "")
	if d.Pending != 0 || d.Topics[0].Confirmed != kv-2 {
		t.Fatalf("failed: %+v", d)
	}
	if f := ks.FleetSummary(); f != (projections.FleetSummary{Clients: 1, Lagging: 1}) {
		t.Fatalf("fleet %+v", f)
	}

	// A resync decided before that rotation (older key version) is not
	// queued: it would take the device back to the old key.
	g.add(cs, &domain.CommandQueued{Code: core.CmdSetTopicKey, Topic: h, TopicKeyVersion: kv - 2,
		Recipients: []domain.Recipient{{Client: a, KeyVersion: 2}}})
	if ks.PendingCount() != 0 {
		t.Fatal("stale SetTopicKey queued")
	}

	// Re-registration: a new device as far as the C2 knows.
	g.add(cs, &domain.ClientRegistered{Client: a, Name: "a", Role: domain.RoleBoth, Key: domain.NewSecret(g.key)})
	d = syncOf(t, ks, a)
	wantStatus(t, d, projections.SyncNeverSeen, "")
	rv := g.streams[cs]
	if d.Seen || !d.FirstSeen.IsZero() || d.Identity != (projections.KeySync{Desired: rv, Accepted: rv, Confirmed: rv}) || d.Topics[0].Accepted != 0 {
		t.Fatalf("re-registered: %+v", d)
	}
	if live, seen := ks.Seen(a); !live || seen {
		t.Fatal("seen survived the re-registration")
	}

	// Removed: no view, never seen.
	g.add(cs, &domain.ClientRemoved{Client: a})
	if _, ok := ks.DeviceSync(a); ok {
		t.Fatal("sync view of a removed client")
	}
	if live, _ := ks.Seen(a); live {
		t.Fatal("removed client live")
	}
	if _, ok := ks.CredentialKeys(a); ok {
		t.Fatal("credential keys of a removed client")
	}
}

// TestDeviceSyncPK checks the C2 key part: a rotation's SetC2Key to every
// client, and a resync's SetC2Key to one client protected with the pair the
// decision names.
func TestDeviceSyncPK(t *testing.T) {
	ks := projections.NewKeyState()
	g := newLogGen(func(r eventstore.Record) {
		if err := ks.Apply(r); err != nil {
			t.Fatal(err)
		}
	})
	a, b := domain.ClientID("a"), domain.ClientID("b")
	pub := make([]byte, 32)
	g.add(domain.C2KeyStream, &domain.C2KeyGenerated{Public: pub, Private: domain.NewSecret(g.key)})
	g.add(domain.ClientStream(a), &domain.ClientRegistered{Client: a, Name: "a", Role: domain.RoleBoth, PublicKey: pub})
	g.add(domain.ClientStream(b), &domain.ClientRegistered{Client: b, Name: "b", Role: domain.RoleBoth, PublicKey: pub})
	g.add(domain.DeliveryStream(a), &domain.DeviceSeen{Client: a})
	d := syncOf(t, ks, a)
	wantStatus(t, d, projections.SyncInSync, projections.EvidenceConfirmed)
	if !d.PK || d.C2Key != (projections.KeySync{Desired: 1, Accepted: 1, Confirmed: 1}) {
		t.Fatalf("c2 %+v", d)
	}
	g.add(domain.C2KeyStream, &domain.C2KeyGenerated{Public: pub, Private: domain.NewSecret(g.key)})
	g.add(domain.C2KeyStream, &domain.CommandQueued{Code: core.CmdSetC2Key, C2KeyVersion: 1, NewC2KeyVersion: 2,
		Recipients: []domain.Recipient{{Client: a, KeyVersion: 1}, {Client: b, KeyVersion: 1}}})
	pa := ks.Pending(a, 0)
	if len(pa) != 1 || ks.PendingCount() != 2 {
		t.Fatalf("pending %+v", pa)
	}
	g.add(domain.DeliveryStream(a), &domain.CommandDelivered{Client: a, Ref: pa[0].Ref})
	d = syncOf(t, ks, a)
	wantStatus(t, d, projections.SyncInSync, projections.EvidenceAccepted)
	if d.C2Key != (projections.KeySync{Desired: 2, Accepted: 2, Confirmed: 1}) {
		t.Fatalf("c2 accepted %+v", d.C2Key)
	}
	// b's SetC2Key failed: a resync sends it to b alone, under pair 1.
	pb := ks.Pending(b, 0)
	g.add(domain.DeliveryStream(b), &domain.CommandFailed{Client: b, Ref: pb[0].Ref})
	if v := ks.SyncView(b); v.HeldC2KeyVersion != 1 {
		t.Fatalf("b holds %d", v.HeldC2KeyVersion)
	}
	g.add(domain.ClientStream(b), &domain.CommandQueued{Code: core.CmdSetC2Key, C2KeyVersion: 1, NewC2KeyVersion: 2,
		Recipients: []domain.Recipient{{Client: b, KeyVersion: 1}}})
	if pa := ks.Pending(a, 0); len(pa) != 0 {
		t.Fatal("a resync of b queued to a")
	}
	pb = ks.Pending(b, 0)
	if len(pb) != 1 || pb[0].C2KeyVersion != 1 || pb[0].NewC2KeyVersion != 2 {
		t.Fatalf("b's resync %+v", pb)
	}
	g.add(domain.DeliveryStream(b), &domain.CommandConfirmed{Client: b, Ref: pb[0].Ref})
	if v := ks.SyncView(b); v.HeldC2KeyVersion != 2 {
		t.Fatalf("b holds %d after confirmation", v.HeldC2KeyVersion)
	}
	// A resync decided before a later rotation is not queued.
	g.add(domain.C2KeyStream, &domain.C2KeyGenerated{Public: pub, Private: domain.NewSecret(g.key)})
	g.add(domain.C2KeyStream, &domain.CommandQueued{Code: core.CmdSetC2Key, C2KeyVersion: 2, NewC2KeyVersion: g.streams[domain.C2KeyStream],
		Recipients: []domain.Recipient{{Client: a, KeyVersion: 1}, {Client: b, KeyVersion: 1}}})
	for _, id := range []domain.ID{a, b} {
		p := ks.Pending(id, 0)
		g.add(domain.DeliveryStream(id), &domain.CommandConfirmed{Client: id, Ref: p[0].Ref})
	}
	g.add(domain.ClientStream(b), &domain.CommandQueued{Code: core.CmdSetC2Key, C2KeyVersion: 1, NewC2KeyVersion: 2,
		Recipients: []domain.Recipient{{Client: b, KeyVersion: 1}}})
	if ks.PendingCount() != 0 {
		t.Fatal("stale SetC2Key queued")
	}
	if f := ks.FleetSummary(); f != (projections.FleetSummary{Clients: 2, InSync: 1, NeverSeen: 1}) {
		t.Fatalf("fleet %+v", f)
	}
}

// TestDeviceReleased: an operator's release makes a never-seen device's
// commands deliverable (external broker) without calling it seen, and a
// re-registration (a replaced device) takes the release back.
func TestDeviceReleased(t *testing.T) {
	ks := projections.NewKeyState()
	g := newLogGen(func(r eventstore.Record) {
		if err := ks.Apply(r); err != nil {
			t.Fatal(err)
		}
	})
	a, b := domain.ClientID("a"), domain.ClientID("b")
	h := domain.TopicHash("t")
	ts := domain.TopicStream(h)
	g.add(ts, &domain.TopicCreated{Topic: h, Name: "t", Key: domain.NewSecret(g.key)})
	for _, id := range []domain.ID{a, b} {
		g.add(domain.ClientStream(id), &domain.ClientRegistered{Client: id, Role: domain.RoleBoth, Key: domain.NewSecret(g.key)})
		g.add(ts, &domain.TopicClientLinked{Topic: h, Client: id})
	}
	g.add(ts, &domain.CommandQueued{Code: core.CmdSetTopicKey, Topic: h, TopicKeyVersion: 1,
		Recipients: []domain.Recipient{{Client: a, KeyVersion: 1}, {Client: b, KeyVersion: 1}}})
	if ks.Deliverable(a) || ks.Deliverable(b) || ks.ClientView(a).Released {
		t.Fatal("deliverable before any sighting or release")
	}
	if f := ks.FleetSummary(); f.Waiting != 2 || f.Released != 0 || f.NeverSeen != 2 {
		t.Fatalf("fleet %+v", f)
	}
	g.add(domain.DeliveryStream(a), &domain.DeviceReleased{Client: a})
	if !ks.Deliverable(a) || ks.Deliverable(b) || !ks.ClientView(a).Released {
		t.Fatal("release of a not applied to a alone")
	}
	d := syncOf(t, ks, a)
	wantStatus(t, d, projections.SyncNeverSeen, "")
	if !d.Released || d.Seen || d.Pending != 1 {
		t.Fatalf("released: %+v", d)
	}
	if f := ks.FleetSummary(); f.Waiting != 1 || f.Released != 1 || f.NeverSeen != 2 {
		t.Fatalf("fleet after release %+v", f)
	}
	g.add(domain.DeliveryStream(b), &domain.DeviceSeen{Client: b})
	if !ks.Deliverable(b) {
		t.Fatal("seen device not deliverable")
	}
	g.add(domain.ClientStream(a), &domain.ClientRegistered{Client: a, Role: domain.RoleBoth, Key: domain.NewSecret(g.key)})
	if ks.Deliverable(a) || syncOf(t, ks, a).Released {
		t.Fatal("a re-registered device is still released")
	}
	g.add(domain.ClientStream(b), &domain.ClientRemoved{Client: b})
	if ks.Deliverable(b) {
		t.Fatal("removed client deliverable")
	}
}
