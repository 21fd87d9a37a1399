package c2_test

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/client/credential"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

// syncDevice is a real device (package client) behind the service's queue.
type syncDevice struct {
	t   *testing.T
	e   *env
	id  domain.ID
	dev *client.Client
}

// deliver hands the device every queued command in queue order: a command
// lost(q) says is lost (the device never gets it) is recorded failed; the
// others must open on the device and are recorded confirmed.
func (d *syncDevice) deliver(lost func(q projections.Queued) bool) {
	d.t.Helper()
	ctx := context.Background()
	for _, q := range d.e.svc.PendingFor(d.id, 0) {
		if lost != nil && lost(q) {
			if err := d.e.svc.RecordFailed(ctx, c2.Origin{Actor: "system"}, q, "lost"); err != nil {
				d.t.Fatal(err)
			}
			continue
		}
		topic, payload := must2(d.e.svc.BuildCommand(ctx, q))(d.t)
		if _, isCmd, err := d.dev.Unprotect(payload, topic); err != nil || !isCmd {
			d.t.Fatalf("device refuses %s: %v", q.Code, err)
		}
		if err := d.e.svc.RecordConfirmed(ctx, c2.Origin{Actor: "system"}, q); err != nil {
			d.t.Fatal(err)
		}
	}
}

// check compares the device's keys with the C2's.
func (d *syncDevice) check(topics ...string) {
	d.t.Helper()
	ctx := context.Background()
	st := d.dev.State()
	if d.e.mode == core.SymKey {
		if want := must(d.e.svc.ExportClientKey(ctx, sys, c2.ByID(d.id)))(d.t); !bytes.Equal(st.Key, want) {
			d.t.Fatal("identity key differs from the C2's")
		}
	} else if !bytes.Equal(st.C2PublicKey, d.e.svc.C2().PublicKey) {
		d.t.Fatal("C2 public key differs")
	}
	for _, name := range topics {
		got, ok := st.Topics[domain.TopicHash(name).String()]
		if want := must(d.e.svc.ExportTopicKey(ctx, sys, name))(d.t); !ok || !bytes.Equal(got.Key, want) {
			d.t.Fatalf("key of %s differs", name)
		}
	}
}

func wantSync(t *testing.T, svc *c2.Service, name, status, evidence string) projections.DeviceSync {
	t.Helper()
	d := must(svc.DeviceSync(c2.ByName(name)))(t)
	if d.Status != status || d.Evidence != evidence {
		t.Fatalf("%s: %s/%s, want %s/%s (%+v)", name, d.Status, d.Evidence, status, evidence, d)
	}
	return d
}

func checkReplay(t *testing.T, e *env) {
	t.Helper()
	if got, want := e.rebuild(t, projections.AsOf{}), e.svc.KeyState().Snapshot(); !reflect.DeepEqual(got, want) {
		t.Fatal("replayed state differs from the live one")
	}
}

func lostCodes(codes ...core.CommandCode) func(projections.Queued) bool {
	return func(q projections.Queued) bool {
		for _, c := range codes {
			if q.Code == c {
				return true
			}
		}
		return false
	}
}

// TestResyncSK loses a SetIdKey and a SetTopicKey on their way to a device,
// then checks that the sync view shows it, that the device's old key is
// still a credential, and that a resync (protected with the key the device
// holds) brings it back exactly to the C2's keys, without duplicates.
func TestResyncSK(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, core.SymKey)
	svc := e.svc
	key := must(e.suite.GenerateKey())(t)
	oldKey := bytes.Clone(key)
	a := domain.ClientID("a")
	must(svc.NewClient(ctx, sys, c2.ByName("a"), key, domain.RoleConsumer))(t)
	dev := &syncDevice{t: t, e: e, id: a, dev: must(client.New(client.Config{Suite: e.suite, Mode: core.SymKey, Name: "a", Key: key, Clock: e.clock.Now}))(t)}
	for _, tp := range []string{"t1", "t2"} {
		must(svc.NewTopic(ctx, sys, tp))(t)
		must(svc.NewTopicClient(ctx, sys, c2.ByName("a"), tp))(t)
	}
	d := wantSync(t, svc, "a", projections.SyncNeverSeen, "")
	if d.Pending != 2 || len(d.Topics) != 2 || d.Topics[0].Desired == 0 || d.Topics[0].Confirmed != 0 {
		t.Fatalf("registered: %+v", d)
	}

	// First connection: one event; the next ones append nothing.
	if err := svc.RecordSeen(ctx, c2.Origin{}, a, false); err != nil {
		t.Fatal(err)
	}
	pos := svc.Position()
	if err := svc.RecordSeen(ctx, c2.Origin{}, a, true); err != nil || svc.Position() != pos {
		t.Fatalf("second sighting: %v, position %d -> %d", err, pos, svc.Position())
	}
	if err := svc.RecordSeen(ctx, c2.Origin{}, domain.ClientID("nobody"), false); err != nil || svc.Position() != pos {
		t.Fatalf("unknown client: %v", err)
	}
	if es, _ := svc.Audit(projections.AuditQuery{Client: &a, Type: "device.seen.v1"}); len(es) != 1 {
		t.Fatalf("%d device.seen entries", len(es))
	}
	wantSync(t, svc, "a", projections.SyncLagging, "")
	dev.deliver(nil)
	dev.check("t1", "t2")
	wantSync(t, svc, "a", projections.SyncInSync, projections.EvidenceConfirmed)
	if f := svc.FleetSummary(); f != (projections.FleetSummary{Clients: 1, InSync: 1}) {
		t.Fatalf("fleet %+v", f)
	}

	// Rotate t1 and the client key; both commands are lost.
	must(svc.RotateTopic(ctx, sys, "t1"))(t)
	must(svc.NewClientKey(ctx, sys, c2.ByName("a")))(t)
	dev.deliver(lostCodes(core.CmdSetIDKey, core.CmdSetTopicKey))
	d = wantSync(t, svc, "a", projections.SyncLagging, "")
	if d.Pending != 0 || d.Identity.Desired == d.Identity.Confirmed || d.HeldKeyVersion != d.Identity.Confirmed {
		t.Fatalf("after loss: %+v", d)
	}
	if f := svc.FleetSummary(); f != (projections.FleetSummary{Clients: 1, Lagging: 1}) {
		t.Fatalf("fleet %+v", f)
	}

	// The device still has its old key: its credential still verifies,
	// and so does one of the new key.
	newKey := must(svc.ExportClientKey(ctx, sys, c2.ByName("a")))(t)
	for _, k := range [][]byte{oldKey, newKey} {
		if id, ok := svc.VerifyDeviceCredential(credential.Username(a[:]), []byte(credential.SKPassword(k, a[:])), e.clock.Now()); !ok || id != a {
			t.Fatal("credential refused")
		}
	}
	b := domain.ClientID("b")
	for _, bad := range []struct{ user, pass string }{
		{credential.Username(a[:]), credential.SKPassword(make([]byte, 32), a[:])},
		{credential.Username(b[:]), credential.SKPassword(newKey, b[:])},
		{"not-hex", credential.SKPassword(newKey, a[:])},
	} {
		if _, ok := svc.VerifyDeviceCredential(bad.user, []byte(bad.pass), e.clock.Now()); ok {
			t.Fatalf("bad credential accepted for %q", bad.user)
		}
	}

	// Resync: SetIdKey under the key the device holds, then t1's key.
	res := must(svc.Resync(ctx, c2.Origin{Actor: "token:ops"}, c2.ByName("a"), false))(t)
	if res.Queued != 2 {
		t.Fatalf("resync queued %d, want 2", res.Queued)
	}
	p := svc.PendingFor(a, 0)
	if len(p) != 2 || p[0].Code != core.CmdSetIDKey || p[0].KeyVersion != d.HeldKeyVersion || p[1].Code != core.CmdSetTopicKey || p[1].Topic != domain.TopicHash("t1") {
		t.Fatalf("resync queue %+v", p)
	}
	if res := must(svc.Resync(ctx, sys, c2.ByName("a"), false))(t); res.Queued != 0 {
		t.Fatalf("second resync queued %d duplicates", res.Queued)
	}
	if res := must(svc.Resync(ctx, sys, c2.ByName("a"), true))(t); res.Queued != 1 {
		t.Fatalf("full resync over pending ones queued %d, want t2 only", res.Queued)
	}
	if es, _ := svc.Audit(projections.AuditQuery{Client: &a, Actor: "token:ops", Type: "command.queued.v1"}); len(es) != 2 {
		t.Fatalf("%d attributed resync commands", len(es))
	}
	dev.deliver(nil)
	dev.check("t1", "t2")
	wantSync(t, svc, "a", projections.SyncInSync, projections.EvidenceConfirmed)
	if _, ok := svc.VerifyDeviceCredential(credential.Username(a[:]), []byte(credential.SKPassword(oldKey, a[:])), e.clock.Now()); ok {
		t.Fatal("old key still a credential after the rotation was confirmed")
	}

	// Full resync of a device in sync: harmless.
	if n := must(svc.ResyncAll(ctx, sys, true))(t); n != 3 {
		t.Fatalf("full resync queued %d", n)
	}
	dev.deliver(nil)
	dev.check("t1", "t2")
	if n := must(svc.ResyncAll(ctx, sys, false))(t); n != 0 {
		t.Fatalf("resync of an in-sync fleet queued %d", n)
	}

	// Accepted only: in sync, on the weaker grade.
	must(svc.RotateTopic(ctx, sys, "t2"))(t)
	for _, q := range svc.PendingFor(a, 0) {
		if err := svc.RecordDelivered(ctx, sys, q); err != nil {
			t.Fatal(err)
		}
		if err := svc.RecordConfirmed(ctx, sys, q); !errors.Is(err, c2.ErrNotPending) {
			t.Fatalf("confirming a settled command: %v", err)
		}
	}
	d = wantSync(t, svc, "a", projections.SyncInSync, projections.EvidenceAccepted)
	if d.Topics[1].Accepted != d.Topics[1].Desired || d.Topics[1].Confirmed == d.Topics[1].Desired {
		t.Fatalf("accepted t2: %+v", d.Topics[1])
	}

	// Authorization: a consumer subscribes to its topics and its control
	// topic, publishes nowhere.
	if !svc.MaySubscribe(a, "t1") || !svc.MaySubscribe(a, core.ControlTopic(a[:])) || svc.MaySubscribe(a, "t3") ||
		svc.MayPublish(a, "t1") || svc.MaySubscribe(domain.ClientID("b"), "t1") {
		t.Fatal("wrong authorization")
	}
	must(svc.NewClient(ctx, sys, c2.ByName("p"), key, domain.RolePublisher))(t)
	must(svc.NewTopicClient(ctx, sys, c2.ByName("p"), "t1"))(t)
	if !svc.MayPublish(domain.ClientID("p"), "t1") || svc.MayPublish(domain.ClientID("p"), "t2") {
		t.Fatal("publisher not authorized")
	}
	checkReplay(t, e)
	if _, err := svc.Resync(ctx, sys, c2.ByName("nobody"), false); !errors.Is(err, domain.ErrUnknownClient) {
		t.Fatalf("resync of an unknown client: %v", err)
	}
	if _, err := svc.DeviceSync(c2.ByName("nobody")); !errors.Is(err, domain.ErrUnknownClient) {
		t.Fatalf("sync of an unknown client: %v", err)
	}
}

// TestResyncPK loses a SetC2Key (and what the new pair protects after it)
// and checks that a resync sends the pair under the old one first.
func TestResyncPK(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, core.PubKey)
	svc := e.svc
	pk := e.suite.(core.PKSuite)
	a := domain.ClientID("a")
	ident := must(pk.GenerateIdentity())(t)
	must(svc.NewClient(ctx, sys, c2.ByName("a"), ident.PublicKey(), domain.RoleBoth))(t)
	dev := &syncDevice{t: t, e: e, id: a, dev: must(client.New(client.Config{Suite: e.suite, Mode: core.PubKey, Name: "a",
		Key: ident.Bytes(), C2PublicKey: svc.C2().PublicKey, Clock: e.clock.Now}))(t)}
	must(svc.NewTopic(ctx, sys, "t1"))(t)
	must(svc.NewTopicClient(ctx, sys, c2.ByName("a"), "t1"))(t)
	dev.deliver(nil)
	if err := svc.RecordSeen(ctx, c2.Origin{}, a, false); err != nil {
		t.Fatal(err)
	}
	d := wantSync(t, svc, "a", projections.SyncInSync, projections.EvidenceConfirmed)
	if !d.PK || d.C2Key.Desired == 0 || d.C2Key.Confirmed != d.C2Key.Desired {
		t.Fatalf("c2 key %+v", d)
	}

	// PK credential: signed with the device's identity.
	pass := must(credential.PKPassword(pk, ident, a[:], e.clock.Now()))(t)
	if id, ok := svc.VerifyDeviceCredential(credential.Username(a[:]), []byte(pass), e.clock.Now()); !ok || id != a {
		t.Fatal("PK credential refused")
	}
	other := must(pk.GenerateIdentity())(t)
	bad := must(credential.PKPassword(pk, other, a[:], e.clock.Now()))(t)
	if _, ok := svc.VerifyDeviceCredential(credential.Username(a[:]), []byte(bad), e.clock.Now()); ok {
		t.Fatal("PK credential of another identity accepted")
	}

	// The new pair and the topic key it protects are lost.
	must(svc.NewC2Key(ctx, sys))(t)
	must(svc.RotateTopic(ctx, sys, "t1"))(t)
	dev.deliver(func(projections.Queued) bool { return true })
	d = wantSync(t, svc, "a", projections.SyncLagging, "")
	if d.C2Key.Desired == d.C2Key.Accepted {
		t.Fatalf("lost c2 key counted: %+v", d.C2Key)
	}
	res := must(svc.Resync(ctx, sys, c2.ByName("a"), false))(t)
	if p := svc.PendingFor(a, 0); res.Queued != 2 || p[0].Code != core.CmdSetC2Key || p[0].C2KeyVersion != d.C2Key.Confirmed {
		t.Fatalf("resync %+v: %+v", res, p)
	}
	dev.deliver(nil)
	dev.check("t1")
	wantSync(t, svc, "a", projections.SyncInSync, projections.EvidenceConfirmed)
	checkReplay(t, e)
}

// TestConcurrentSeenAndResync: many connections of one device append one
// device.seen; concurrent resyncs queue each missing key once.
func TestConcurrentSeenAndResync(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, core.SymKey)
	svc := e.svc
	a := domain.ClientID("a")
	must(svc.NewClient(ctx, sys, c2.ByName("a"), must(e.suite.GenerateKey())(t), domain.RoleBoth))(t)
	must(svc.NewTopic(ctx, sys, "t"))(t)
	must(svc.NewTopicClient(ctx, sys, c2.ByName("a"), "t"))(t)
	for _, q := range svc.PendingFor(a, 0) {
		if err := svc.RecordFailed(ctx, sys, q, "lost"); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	queued := make(chan int, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				if err := svc.RecordSeen(ctx, c2.Origin{}, a, i%4 == 0); err != nil {
					t.Error(err)
				}
				return
			}
			res, err := svc.Resync(ctx, sys, c2.ByName("a"), false)
			if err != nil {
				t.Error(err)
			}
			queued <- res.Queued
		}()
	}
	wg.Wait()
	close(queued)
	total := 0
	for n := range queued {
		total += n
	}
	if es, _ := svc.Audit(projections.AuditQuery{Client: &a, Type: "device.seen.v1"}); len(es) != 1 {
		t.Fatalf("%d device.seen events", len(es))
	}
	if p := svc.PendingFor(a, 0); total != 1 || len(p) != 1 || p[0].Code != core.CmdSetTopicKey {
		t.Fatalf("%d queued, pending %+v", total, p)
	}
	checkReplay(t, e)
}
