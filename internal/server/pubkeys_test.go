package server_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/suites/core"
)

// confirmedPubKeysMatch compares what the C2 has confirmed a PK device
// holds (its sync view's public keys) with the device library's own state:
// the same peers, each with the signing key of the version the C2
// confirmed, and every confirmed key the one the C2 wants. want maps each
// peer to its current signing key.
func confirmedPubKeysMatch(svc *c2.Service, name string, dev *client.Client, want map[domain.ID][]byte) error {
	ds, err := svc.DeviceSync(c2.ByName(name))
	if err != nil {
		return err
	}
	held := dev.State().PubKeys
	seen := 0
	for _, row := range ds.PubKeys {
		if row.Confirmed == 0 {
			if _, ok := held[row.Peer.String()]; ok && row.Desired == 0 {
				return fmt.Errorf("peer %s: removed on the C2's view, still on the device", row.Name)
			}
			continue
		}
		seen++
		if row.Confirmed != row.Desired || row.Accepted != row.Confirmed {
			return fmt.Errorf("peer %s: desired %d accepted %d confirmed %d", row.Name, row.Desired, row.Accepted, row.Confirmed)
		}
		got, ok := held[row.Peer.String()]
		if !ok {
			return fmt.Errorf("peer %s: confirmed by the C2, absent on the device", row.Name)
		}
		if !bytes.Equal(got, want[row.Peer]) {
			return fmt.Errorf("peer %s: the device holds another key than the C2's current one", row.Name)
		}
	}
	if seen != len(held) {
		return fmt.Errorf("the device holds %d public keys, the C2 confirmed %d", len(held), seen)
	}
	return nil
}

// PK mode, embedded broker, device-library devices: the public keys a
// device is sent are tracked to its confirmation. A SetPubKey decided while
// the device is offline and then lost (recorded failed) leaves it lagging
// after it reconnects; a resync sends the key again. A peer whose public
// key is replaced (new_client --replace) reaches the devices that held the
// old one without an operator's resend, and a RemovePubKey leaves no
// trace on either side. At each step the C2's confirmed view equals the
// device's own state.
func TestDeviceTruthPKPublicKeys(t *testing.T) {
	ctx := context.Background()
	o := c2.Origin{Actor: "test"}
	srv := startServer(t, "standard", "pk", "")
	svc := srv.Service()
	url := "tcp://" + srv.MQTTAddr()
	a := registerOnly(t, srv, "pk-a", domain.RoleBoth, nil)
	b := registerOnly(t, srv, "pk-b", domain.RoleBoth, nil)
	c := registerOnly(t, srv, "pk-c", domain.RoleBoth, nil)
	want := map[domain.ID][]byte{b.id: b.c.SigningPublicKey(), c.id: c.c.SigningPublicKey()}
	matches := func() bool { return confirmedPubKeysMatch(svc, a.name, a.c, want) == nil }
	inSync := func() bool {
		ds, err := svc.DeviceSync(c2.ByName(a.name))
		return err == nil && ds.Status == "in_sync" && ds.Evidence == "confirmed"
	}
	a.connect(t, url)
	if _, err := svc.SendClientPubKey(ctx, o, c2.ByName(a.name), c2.ByName(c.name)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a holds c's key, confirmed", func() bool { return inSync() && matches() })

	// a goes away; b's key is sent meanwhile and the command is lost.
	a.dev.d.Close()
	eventually(t, "the broker sees a offline", func() bool { return !srv.DeviceOnline(a.id) })
	if _, err := svc.SendClientPubKey(ctx, o, c2.ByName(a.name), c2.ByName(b.name)); err != nil {
		t.Fatal(err)
	}
	qs := svc.PendingFor(a.id, 0)
	if len(qs) != 1 || qs[0].Code != core.CmdSetPubKey {
		t.Fatalf("pending for a: %+v", qs)
	}
	if err := svc.RecordFailed(ctx, o, qs[0], "lost for the test"); err != nil {
		t.Fatal(err)
	}
	a.connect(t, url)
	eventually(t, "a back online", func() bool { return srv.DeviceOnline(a.id) })
	if ds, _ := svc.DeviceSync(c2.ByName(a.name)); ds.Status != "lagging" {
		t.Fatalf("a lacks b's key: status %q, want lagging", ds.Status)
	}
	if err := confirmedPubKeysMatch(svc, a.name, a.c, want); err != nil {
		t.Fatalf("before the resync: %v", err) // c only, on both sides
	}
	res, err := svc.Resync(ctx, o, c2.ByName(a.name), false)
	if err != nil || res.Queued != 1 {
		t.Fatalf("resync: %+v, %v; want 1 command (SetPubKey of b)", res, err)
	}
	eventually(t, "a holds b's and c's keys, confirmed", func() bool { return inSync() && matches() && len(a.c.State().PubKeys) == 2 })

	// b is re-provisioned with a new identity: a should hold the new key,
	// and gets it without anyone resending it by hand.
	pks := svc.Suite().(core.PKSuite)
	nb, err := pks.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	res, err = svc.ReplaceClient(ctx, o, c2.ByName(b.name), nb.PublicKey(), 0)
	if err != nil || res.Queued != 1 {
		t.Fatalf("replace b: %+v, %v; want SetPubKey queued to a", res, err)
	}
	want[b.id] = nb.SigningPublicKey()
	eventually(t, "a holds b's new key, confirmed", func() bool { return inSync() && matches() })
	if got := a.c.State().PubKeys[hex.EncodeToString(b.id[:])]; !bytes.Equal(got, nb.SigningPublicKey()) {
		t.Fatal("a does not hold b's new key")
	}

	// RemovePubKey: gone from the device and from the C2's view.
	if _, err := svc.RemoveClientPubKey(ctx, o, c2.ByName(a.name), c2.ByName(c.name)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "c's key removed on both sides", func() bool {
		ds, _ := svc.DeviceSync(c2.ByName(a.name))
		return inSync() && matches() && len(ds.PubKeys) == 1 && len(a.c.State().PubKeys) == 1
	})
	if _, errs, _ := a.dev.snapshot(); len(errs) != 0 {
		t.Fatalf("device errors: %v", errs)
	}
}
