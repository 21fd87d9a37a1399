package broker

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"go.etcd.io/bbolt"

	"github.com/e4c2/e4c2/internal/testwait"
)

// storeCounts counts the records of the persistence file by kind (CL, SUB,
// IFM). The broker must be closed (bbolt locks the file).
func storeCounts(t *testing.T, path string) map[string]int {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := map[string]int{}
	err = db.View(func(tx *bbolt.Tx) error {
		bk := tx.Bucket([]byte("mochi"))
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, _ []byte) error {
			if i := bytes.IndexByte(k, '_'); i > 0 {
				n[string(k[:i])]++
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (b *Broker) sessions() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.srv == nil {
		return 0
	}
	return b.srv.Clients.Len()
}

// Persistent sessions of clients that are not devices expire after
// SessionExpiry, and leave the persistence file with their subscriptions
// and queued messages; a device's session stays.
func TestSessionExpiryCleansStore(t *testing.T) {
	const n = 40
	path := filepath.Join(t.TempDir(), "b.db")
	auth := newAuthority()
	a := auth.device(1)
	addr := freeAddr(t)
	b := startBroker(t, Config{Address: addr, AllowAnonymous: true, Authority: auth, PersistPath: path, SessionExpiry: time.Hour})
	dev := mustDial(t, addr, rawConnect{version: 4, clientID: clientID(a), user: user(a), pass: auth.password(a)})
	dev.subscribe(t, 2, ControlTopic(a))
	dev.conn.Close()
	for i := range n {
		rc := mustDial(t, addr, rawConnect{version: 4, clientID: fmt.Sprintf("tmp-%d", i)})
		rc.subscribe(t, 1, "a/b")
		rc.conn.Close()
	}
	testwait.For(t, "all gone", func() bool { return b.ListenerStats().Active == 0 })
	if err := b.Publish("a/b", []byte("queued")); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ControlTopic(a), []byte("cmd")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	before := storeCounts(t, path)
	if before["CL"] != n+1 || before["SUB"] != n+1 || before["IFM"] != n+1 {
		t.Fatalf("store before expiry %v, want %d of each", before, n+1)
	}

	// Restart with a short expiry for non-device sessions.
	b = startBroker(t, Config{Address: addr, AllowAnonymous: true, Authority: auth, PersistPath: path, SessionExpiry: time.Second})
	if got := b.sessions(); got != n+2 { // + the device and the inline client
		t.Fatalf("%d sessions loaded, want %d", got, n+2)
	}
	testwait.For(t, "expiry", func() bool { return b.sessions() == 2 })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	after := storeCounts(t, path)
	if after["CL"] != 1 || after["SUB"] != 1 || after["IFM"] != 1 {
		t.Fatalf("store after expiry %v, want only the device's session (1 of each)", after)
	}
	// The device's session still delivers its queued command.
	b = startBroker(t, Config{Address: addr, Authority: auth, PersistPath: path})
	dev = mustDial(t, addr, rawConnect{version: 4, clientID: clientID(a), user: user(a), pass: auth.password(a)})
	pk, err := dev.read(3 * time.Second)
	if err != nil || string(pk.Payload) != "cmd" {
		t.Fatalf("device's queued command: %v %q", err, pk.Payload)
	}
}

// When mochi expires a session itself (here an MQTT 5 client's own short
// expiry), the whole session leaves the store too, not only its client
// record.
func TestClientExpiryCleansStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.db")
	b := startBroker(t, Config{AllowAnonymous: true, PersistPath: path})
	rc := mustDial(t, b.Addr(), rawConnect{version: 5, clientID: "short", expiry: 1})
	rc.subscribe(t, 1, "a/b")
	rc.conn.Close()
	testwait.For(t, "disconnect", func() bool { return b.ListenerStats().Active == 0 })
	if err := b.Publish("a/b", []byte("queued")); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "mochi's expiry", func() bool { return b.sessions() == 1 })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := storeCounts(t, path); got["CL"]+got["SUB"]+got["IFM"] != 0 {
		t.Fatalf("store after expiry %v, want empty", got)
	}
}

// A refused subscription is not stored (mochi would restore it as a real
// one after a restart).
func TestRefusedSubscriptionNotPersisted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.db")
	auth := newAuthority()
	a := auth.device(1)
	b := startBroker(t, Config{Authority: auth, PersistPath: path})
	rc := mustDial(t, b.Addr(), rawConnect{version: 4, clientID: clientID(a), user: user(a), pass: auth.password(a)})
	rc.subscribe(t, 2, ControlTopic(a), "#", "e4/#")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := storeCounts(t, path)["SUB"]; got != 1 {
		t.Fatalf("%d subscriptions stored, want 1", got)
	}
}

func TestMaxPacketSize(t *testing.T) {
	b := startBroker(t, Config{AllowAnonymous: true, MaxPacketSize: 1024})
	rc := mustDial(t, b.Addr(), rawConnect{version: 4, clientID: "big", clean: true})
	small := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: "a", PacketID: 1,
		Payload: []byte(strings.Repeat("x", 900))}
	if err := rc.send(small); err != nil {
		t.Fatal(err)
	}
	if pk, err := rc.read(3 * time.Second); err != nil || pk.FixedHeader.Type != packets.Puback {
		t.Fatalf("small publish: %v %+v", err, pk.FixedHeader)
	}
	big := small
	big.PacketID, big.Payload = 2, []byte(strings.Repeat("x", 2000))
	if err := rc.send(big); err != nil {
		t.Fatal(err)
	}
	if pk, err := rc.read(3 * time.Second); err == nil {
		t.Fatalf("oversized publish answered with %+v, want the connection closed", pk.FixedHeader)
	}
}
