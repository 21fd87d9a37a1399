package c2_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

type pkDevice struct {
	id    core.Identity
	c2Pub []byte // the C2 public key the device knows
}

// open opens a built command the way a PK device does and applies
// SetC2Key to itself.
func (d *pkDevice) open(t *testing.T, e *env, q projections.Queued) core.Command {
	t.Helper()
	_, payload, err := e.svc.BuildCommand(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	pk := e.suite.(core.PKSuite)
	plain, err := pk.UnprotectCommand(d.id, d.c2Pub, payload, e.clock.Now(), core.Window{MaxAge: 3600e9})
	if err != nil {
		t.Fatalf("device cannot open %s: %v", q.Code, err)
	}
	cmd, err := core.DecodeCommand(plain, e.suite.Sizes(), core.PubKey)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Code == core.CmdSetC2Key {
		d.c2Pub = cmd.Key
	}
	return cmd
}

func TestPKLifecycle(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, core.PubKey)
	svc := e.svc
	pk := e.suite.(core.PKSuite)
	c2info := svc.C2()
	if !c2info.Exists || c2info.KeyVersion != 1 {
		t.Fatalf("no first c2 key: %+v", c2info)
	}
	devs := map[string]*pkDevice{}
	for _, name := range []string{"a", "b"} {
		id, err := pk.GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		devs[name] = &pkDevice{id: id, c2Pub: c2info.PublicKey}
		must(svc.NewClient(ctx, sys, c2.ByName(name), id.PublicKey(), 0))(t)
	}
	if _, err := svc.NewClientKey(ctx, sys, c2.ByName("a")); !errorsIs(err, core.ErrUnsupportedOperation) {
		t.Fatalf("new_client_key in PK: %v", err)
	}
	must(svc.NewTopic(ctx, sys, "t"))(t)
	must(svc.NewTopicClient(ctx, sys, c2.ByName("a"), "t"))(t)
	must(svc.SendClientPubKey(ctx, sys, c2.ByName("a"), c2.ByName("b")))(t)
	must(svc.RemoveClientPubKey(ctx, sys, c2.ByName("a"), c2.ByName("b")))(t)
	must(svc.ResetClientPubKeys(ctx, sys, c2.ByName("a")))(t)
	p := svc.PendingFor(domain.ClientID("a"), 0)
	if len(p) != 4 {
		t.Fatalf("a has %d pending", len(p))
	}
	a := devs["a"]
	tk := must(svc.ExportTopicKey(ctx, sys, "t"))(t)
	if cmd := a.open(t, e, p[0]); cmd.Code != core.CmdSetTopicKey || !bytes.Equal(cmd.Key, tk) {
		t.Fatalf("SetTopicKey wrong: %v", cmd.Code)
	}
	cmd := a.open(t, e, p[1])
	if cmd.Code != core.CmdSetPubKey || !bytes.Equal(cmd.Key, devs["b"].id.SigningPublicKey()) || !bytes.Equal(cmd.ID, e.suite.ID("b")) {
		t.Fatalf("SetPubKey wrong: %v", cmd.Code)
	}
	if cmd := a.open(t, e, p[2]); cmd.Code != core.CmdRemovePubKey || !bytes.Equal(cmd.ID, e.suite.ID("b")) {
		t.Fatalf("RemovePubKey wrong: %v", cmd.Code)
	}
	if cmd := a.open(t, e, p[3]); cmd.Code != core.CmdResetPubKeys {
		t.Fatalf("ResetPubKeys wrong: %v", cmd.Code)
	}
	for _, q := range p {
		if err := svc.RecordDelivered(ctx, sys, q); err != nil {
			t.Fatal(err)
		}
	}

	// new_c2_key: SetC2Key to every client under the OLD pair; commands
	// queued afterwards use the new pair.
	must(svc.NewC2Key(ctx, sys))(t)
	newPub := svc.C2().PublicKey
	if bytes.Equal(newPub, c2info.PublicKey) {
		t.Fatal("c2 key not rotated")
	}
	must(svc.RotateTopic(ctx, sys, "t"))(t) // rotation to a
	for name, d := range devs {
		q := svc.PendingFor(domain.ClientID(name), 0)
		if len(q) == 0 || q[0].Code != core.CmdSetC2Key {
			t.Fatalf("%s: no SetC2Key", name)
		}
		if cmd := d.open(t, e, q[0]); !bytes.Equal(cmd.Key, newPub) {
			t.Fatalf("%s: SetC2Key carries the wrong key", name)
		}
		if !bytes.Equal(d.c2Pub, newPub) {
			t.Fatal("device did not switch")
		}
		if name == "a" {
			if len(q) != 2 || q[1].C2KeyVersion != svc.C2().KeyVersion {
				t.Fatalf("rotation after new_c2_key: %+v", q)
			}
			if cmd := d.open(t, e, q[1]); cmd.Code != core.CmdSetTopicKey {
				t.Fatal("rotation not readable with the new pair")
			}
		}
	}
	if got, want := e.rebuild(t, projections.AsOf{}), svc.KeyState().Snapshot(); !equalSnap(got, want) {
		t.Fatal("replay differs from live state")
	}
}
