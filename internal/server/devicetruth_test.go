package server_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/client/e4mqtt"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/server"
	"github.com/e4c2/e4c2/internal/testbroker"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites"
	"github.com/e4c2/e4c2/suites/core"
)

// fleetDevice is a registered device that is not connected yet.
type fleetDevice struct {
	name string
	id   domain.ID
	c    *client.Client
	dev  *device
}

func registerOnly(t *testing.T, srv *server.Server, name string, role domain.Role, clock func() time.Time) *fleetDevice {
	t.Helper()
	c := server.RegisterTestDevice(t, context.Background(), srv.Service(), c2.Origin{Actor: "test"}, name, role, clock)
	return &fleetDevice{name: name, id: domain.ID(c.ID()), c: c}
}

func (f *fleetDevice) connect(t *testing.T, url string) {
	t.Helper()
	f.dev = &device{name: f.name, c: f.c}
	d, err := e4mqtt.Connect(context.Background(), f.c, e4mqtt.Config{BrokerURL: url, OnMessage: f.dev.onMessage})
	if err != nil {
		t.Fatalf("connect %s: %v", f.name, err)
	}
	f.dev.d = d
	t.Cleanup(d.Close)
}

// holds reports whether the device holds exactly the C2's current key of
// every topic (compared with the key the C2 set, not just "a new key").
func holds(t *testing.T, svc *c2.Service, c *client.Client, topics ...string) bool {
	t.Helper()
	for _, tp := range topics {
		want, err := svc.ExportTopicKey(context.Background(), c2.Origin{Actor: "test"}, tp)
		if err != nil {
			t.Fatal(err)
		}
		if got := topicKey(c, tp); !bytes.Equal(got, want) {
			return false
		}
	}
	return true
}

// A device registered and attached before it ever connected: the C2 says
// "never seen, 3 commands waiting", hands nothing to the broker, and the
// device gets every command when it first connects; the C2 then sees it in
// sync, confirmed by the device's own session.
func TestDeviceTruthNeverSeenDevice(t *testing.T) {
	for _, cb := range []combo{{"standard", "sk"}, {"standard", "pk"}, {"fips", "sk"}} {
		t.Run(cb.suite+"-"+cb.mode, func(t *testing.T) {
			ctx := context.Background()
			o := c2.Origin{Actor: "test"}
			srv := startServer(t, cb.suite, cb.mode, "")
			svc := srv.Service()
			f := registerOnly(t, srv, "late-device", domain.RoleBoth, nil)
			topics := []string{"plant/a", "plant/b", "plant/c"}
			for _, tp := range topics {
				if _, err := svc.NewTopic(ctx, o, tp); err != nil {
					t.Fatal(err)
				}
				if _, err := svc.NewTopicClient(ctx, o, c2.ByName(f.name), tp); err != nil {
					t.Fatal(err)
				}
			}
			ds, err := svc.DeviceSync(c2.ByName(f.name))
			if err != nil {
				t.Fatal(err)
			}
			if ds.Status != "never_seen" || ds.Pending != 3 {
				t.Fatalf("before connecting: status %q pending %d, want never_seen with 3 commands waiting", ds.Status, ds.Pending)
			}
			if got := svc.PendingCount(); got != 3 {
				t.Fatalf("pending %d, want 3 (nothing may count as delivered)", got)
			}
			f.connect(t, "tcp://"+srv.MQTTAddr())
			eventually(t, "the late device holds the three keys", func() bool { return holds(t, svc, f.c, topics...) })
			eventually(t, "the C2 sees it in sync, confirmed", func() bool {
				ds, err := svc.DeviceSync(c2.ByName(f.name))
				return err == nil && ds.Status == "in_sync" && ds.Evidence == "confirmed" && ds.Pending == 0
			})
			ds, _ = svc.DeviceSync(c2.ByName(f.name))
			if len(ds.Topics) != 3 {
				t.Fatalf("sync view has %d topics, want 3", len(ds.Topics))
			}
			for _, row := range ds.Topics {
				if row.Confirmed != row.Desired || row.Desired == 0 {
					t.Fatalf("topic %s: desired %d confirmed %d", row.Name, row.Desired, row.Confirmed)
				}
			}
			if _, errs, _ := f.dev.snapshot(); len(errs) != 0 {
				t.Fatalf("device errors: %v", errs)
			}
		})
	}
}

// A controllable clock shared by the C2 and the devices.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// A device offline for longer than the protocol's 10-minute window through
// a topic rotation and an identity-key rotation: the commands are protected
// when the device takes them, not when they were decided, so none arrives
// stale; the device reconnects with its old key's credential (the C2 keeps
// it until the rotation is confirmed) and ends with the right keys.
func TestDeviceTruthOfflinePastTheWindow(t *testing.T) {
	ctx := context.Background()
	o := c2.Origin{Actor: "test"}
	clk := &testClock{t: time.Now()}
	srv := startWith(t, nil, clk.Now)
	svc := srv.Service()
	url := "tcp://" + srv.MQTTAddr()
	f := registerOnly(t, srv, "traveller", domain.RoleBoth, clk.Now)
	if _, err := svc.NewTopic(ctx, o, "fleet/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.NewTopicClient(ctx, o, c2.ByName(f.name), "fleet/x"); err != nil {
		t.Fatal(err)
	}
	f.connect(t, url)
	eventually(t, "first key", func() bool { return holds(t, svc, f.c, "fleet/x") })
	f.dev.d.Close()
	eventually(t, "the broker sees the device leave", func() bool { return !srv.DeviceOnline(f.id) })

	if _, err := svc.RotateTopic(ctx, o, "fleet/x"); err != nil { // rotation
		t.Fatal(err)
	}
	if _, err := svc.NewClientKey(ctx, o, c2.ByName(f.name)); err != nil { // SetIdKey
		t.Fatal(err)
	}
	clk.Add(25 * time.Minute) // far past the 10-minute window
	if n := svc.PendingCount(); n != 2 {
		t.Fatalf("pending %d, want 2 (rotation and SetIdKey wait for the device)", n)
	}
	f.connect(t, url) // presents the credential of the key it holds: the old one
	eventually(t, "the device holds the rotated topic key", func() bool {
		if _, errs, _ := f.dev.snapshot(); len(errs) != 0 {
			t.Fatalf("device rejected a command: %v", errs)
		}
		return holds(t, svc, f.c, "fleet/x")
	})
	eventually(t, "the C2 sees the device in sync", func() bool {
		ds, err := svc.DeviceSync(c2.ByName(f.name))
		return err == nil && ds.Status == "in_sync" && ds.Pending == 0
	})
	want, err := svc.ExportClientKey(ctx, o, c2.ByName(f.name))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.c.State().Key; !bytes.Equal(got, want) {
		t.Fatal("device does not hold the C2's new identity key")
	}
	if _, errs, _ := f.dev.snapshot(); len(errs) != 0 {
		t.Fatalf("device rejected a command: %v", errs)
	}
	// And it can reconnect with the new key's credential.
	f.dev.d.Close()
	f.connect(t, url)
}

// rawConnect connects a plain paho client (nothing of ours) and returns it,
// or the connection error.
func rawConnect(url, clientID, user, password string) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker(url).SetClientID(clientID).
		SetCleanSession(true).SetConnectTimeout(5 * time.Second).SetAutoReconnect(false)
	if user != "" {
		o.SetUsername(user).SetPassword(password)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	return c, nil
}

func subscribeCode(t *testing.T, c paho.Client, filter string) byte {
	t.Helper()
	tok := c.Subscribe(filter, 2, func(paho.Client, paho.Message) {})
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("subscribe %s timed out", filter)
	}
	st := tok.(*paho.SubscribeToken)
	return st.Result()[filter]
}

// The broker lets only the right device take a device's client id and read
// its commands, and enforces roles; a device that uses paho and the
// documented recipe (HMAC-SHA256 from the standard library) connects.
func TestDeviceTruthBrokerAuthentication(t *testing.T) {
	ctx := context.Background()
	o := c2.Origin{Actor: "test"}
	srv := startServer(t, "standard", "sk", "")
	svc := srv.Service()
	url := "tcp://" + srv.MQTTAddr()
	s, _ := suites.ByName("standard")

	key, _ := s.GenerateKey()
	if _, err := svc.NewClient(ctx, o, c2.ByName("victim"), key, domain.RoleConsumer); err != nil {
		t.Fatal(err)
	}
	otherKey, _ := s.GenerateKey()
	if _, err := svc.NewClient(ctx, o, c2.ByName("other"), otherKey, domain.RoleBoth); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.NewTopic(ctx, o, "site/t"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AttachClients(ctx, o, "site/t", []c2.ClientRef{c2.ByName("victim"), c2.ByName("other")}); err != nil {
		t.Fatal(err)
	}
	id := s.ID("victim")
	otherID := s.ID("other")
	user := hex.EncodeToString(id)
	// The documented recipe, with nothing of ours.
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("e4c2-mqtt-v1:" + user))
	password := hex.EncodeToString(mac.Sum(nil))
	otherMac := hmac.New(sha256.New, otherKey)
	otherMac.Write([]byte("e4c2-mqtt-v1:" + hex.EncodeToString(otherID)))
	otherPassword := hex.EncodeToString(otherMac.Sum(nil))
	clientID := "e4dev-" + user

	for name, try := range map[string][3]string{
		"stolen client id, no credential":       {clientID, "", ""},
		"stolen client id, wrong password":      {clientID, user, otherPassword},
		"stolen client id, other's credential":  {clientID, hex.EncodeToString(otherID), otherPassword},
		"own credential, another device's id":   {"e4dev-" + hex.EncodeToString(otherID), user, password},
		"anonymous":                             {"someone", "", ""},
		"right credential, arbitrary client id": {"not-the-device", user, password},
	} {
		if c, err := rawConnect(url, try[0], try[1], try[2]); err == nil {
			c.Disconnect(0)
			t.Errorf("%s: connection accepted", name)
		}
	}

	c, err := rawConnect(url, clientID, user, password)
	if err != nil {
		t.Fatalf("the device's own credential was refused: %v", err)
	}
	defer c.Disconnect(0)
	for _, f := range []string{"#", "e4/#", "e4/" + hex.EncodeToString(otherID), "site/+"} {
		if code := subscribeCode(t, c, f); code < 0x80 {
			t.Errorf("subscription to %q granted (code %#x)", f, code)
		}
	}
	if code := subscribeCode(t, c, "e4/"+user); code >= 0x80 {
		t.Fatalf("own control topic refused (code %#x)", code)
	}
	if code := subscribeCode(t, c, "site/t"); code >= 0x80 {
		t.Fatalf("attached topic refused (code %#x)", code)
	}
	if code := subscribeCode(t, c, "site/unattached"); code < 0x80 {
		t.Errorf("unattached topic granted (code %#x)", code)
	}

	// A consumer cannot publish on its topic: a listener on it (the other
	// device) hears nothing, while the other device's publish arrives.
	oc, err := rawConnect(url, "e4dev-"+hex.EncodeToString(otherID), hex.EncodeToString(otherID), otherPassword)
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Disconnect(0)
	got := make(chan string, 4)
	tok := oc.Subscribe("site/t", 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) })
	tok.WaitTimeout(10 * time.Second)
	c.Publish("site/t", 1, false, "from the consumer").WaitTimeout(5 * time.Second)
	oc.Publish("site/t", 1, false, "from both").WaitTimeout(5 * time.Second)
	select {
	case m := <-got:
		if m != "from both" {
			t.Fatalf("first message on site/t is %q: the consumer published", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the publisher's message never arrived")
	}
}

// Through an external mosquitto with the acknowledgement extension: a device
// that never connected is held (never seen, commands waiting), gets every
// command at its first hello, and the C2 confirms each by the device's ack;
// commands decided while it is away wait and are protected when it is back.
func TestDeviceTruthExternalBrokerAcks(t *testing.T) {
	ctx := context.Background()
	o := c2.Origin{Actor: "test"}
	url := testbroker.StartMosquitto(t, 0).URL()
	srv := startWith(t, func(c *config.Config) { c.Broker, c.DeviceAcks = url, true }, nil)
	svc := srv.Service()
	f := registerOnly(t, srv, "acker", domain.RoleBoth, nil)
	topics := []string{"ext/a", "ext/b", "ext/c"}
	for _, tp := range topics {
		if _, err := svc.NewTopic(ctx, o, tp); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.NewTopicClient(ctx, o, c2.ByName(f.name), tp); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := svc.DeviceSync(c2.ByName(f.name))
	if err != nil || ds.Status != "never_seen" || ds.Pending != 3 {
		t.Fatalf("before its first hello: %+v %v", ds, err)
	}
	connect := func() {
		f.dev = &device{name: f.name, c: f.c}
		d, err := e4mqtt.Connect(ctx, f.c, e4mqtt.Config{BrokerURL: url, Acks: true, OnMessage: f.dev.onMessage})
		if err != nil {
			t.Fatal(err)
		}
		f.dev.d = d
		t.Cleanup(d.Close)
	}
	connect()
	eventually(t, "the device holds the three keys", func() bool { return holds(t, svc, f.c, topics...) })
	eventually(t, "the C2 confirms them", func() bool {
		ds, err := svc.DeviceSync(c2.ByName(f.name))
		return err == nil && ds.Status == "in_sync" && ds.Evidence == "confirmed"
	})
	f.dev.d.Close()
	if _, err := svc.RotateTopic(ctx, o, "ext/a"); err != nil { // rotation while away
		t.Fatal(err)
	}
	// Held, not handed to the broker: still pending after a while.
	time.Sleep(300 * time.Millisecond) // nothing to wait on: it is an absence
	if n := svc.PendingCount(); n != 1 {
		t.Fatalf("pending %d while the device is away, want 1", n)
	}
	connect()
	eventually(t, "the rotated key after the device is back", func() bool { return holds(t, svc, f.c, topics...) })
	eventually(t, "confirmed again", func() bool {
		ds, err := svc.DeviceSync(c2.ByName(f.name))
		return err == nil && ds.Status == "in_sync" && ds.Evidence == "confirmed"
	})
}

// A reference-style device: plain paho, the credential computed with the
// standard library, no acknowledgement of any kind. It still gets every
// command (here SetTopicKey for a topic it is attached to while connected),
// opens it with the E4 primitives alone, and the C2 sees it confirmed by
// the device's MQTT session.
func TestDeviceTruthReferenceStyleDevice(t *testing.T) {
	ctx := context.Background()
	o := c2.Origin{Actor: "test"}
	srv := startServer(t, "standard", "sk", "")
	svc := srv.Service()
	s, _ := suites.ByName("standard")
	key, _ := s.GenerateKey()
	if _, err := svc.NewClient(ctx, o, c2.ByName("ref-device"), key, domain.RoleBoth); err != nil {
		t.Fatal(err)
	}
	id := s.ID("ref-device")
	user := hex.EncodeToString(id)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("e4c2-mqtt-v1:" + user))
	o2 := paho.NewClientOptions().AddBroker("tcp://" + srv.MQTTAddr()).SetClientID("e4dev-" + user).
		SetUsername(user).SetPassword(hex.EncodeToString(mac.Sum(nil))).SetCleanSession(false)
	c := paho.NewClient(o2)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	cmds := make(chan []byte, 4)
	if tok := c.Subscribe("e4/"+user, 2, func(_ paho.Client, m paho.Message) { cmds <- m.Payload() }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if _, err := svc.NewTopic(ctx, o, "ref/t"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.NewTopicClient(ctx, o, c2.ByName("ref-device"), "ref/t"); err != nil {
		t.Fatal(err)
	}
	var protected []byte
	select {
	case protected = <-cmds:
	case <-time.After(30 * time.Second):
		t.Fatal("the reference-style device got no command")
	}
	plain, err := s.Unprotect(key, protected, time.Now(), core.DefaultWindow())
	if err != nil {
		t.Fatalf("the command does not open with the device key: %v", err)
	}
	cmd, err := core.DecodeCommand(plain, s.Sizes(), core.SymKey)
	if err != nil || cmd.Code != core.CmdSetTopicKey {
		t.Fatalf("command %v, %v; want SetTopicKey", cmd.Code, err)
	}
	want, err := svc.ExportTopicKey(ctx, o, "ref/t")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cmd.Key, want) {
		t.Fatal("SetTopicKey carries another key than the C2's")
	}
	eventually(t, "the C2 sees it confirmed", func() bool {
		ds, err := svc.DeviceSync(c2.ByName("ref-device"))
		return err == nil && ds.Status == "in_sync" && ds.Evidence == "confirmed"
	})
}

// Through an external mosquitto without acknowledgements the C2 cannot see
// devices: the commands of devices never seen wait in its outbox (a broker
// keeps nothing for a device it does not know) until an operator releases
// them, one device or all; then they go out, graded "accepted" and no more,
// and later commands of a released device go out at once.
func TestDeviceTruthExternalBrokerRelease(t *testing.T) {
	ctx := context.Background()
	o := c2.Origin{Actor: "test"}
	url := testbroker.StartMosquitto(t, 0).URL()
	srv := startWith(t, func(c *config.Config) { c.Broker = url }, nil)
	svc := srv.Service()
	a := registerOnly(t, srv, "ref-a", domain.RoleBoth, nil)
	b := registerOnly(t, srv, "ref-b", domain.RoleBoth, nil)
	topics := []string{"rel/a", "rel/b"}
	for _, tp := range topics {
		if _, err := svc.NewTopic(ctx, o, tp); err != nil {
			t.Fatal(err)
		}
		for _, f := range []*fleetDevice{a, b} {
			if _, err := svc.NewTopicClient(ctx, o, c2.ByName(f.name), tp); err != nil {
				t.Fatal(err)
			}
		}
	}
	if f := svc.FleetSummary(); f.NeverSeen != 2 || f.Waiting != 4 || f.Released != 0 {
		t.Fatalf("before any release: %+v", f)
	}
	a.connect(t, url)
	b.connect(t, url)

	res, err := svc.Release(ctx, o, c2.ByName(a.name))
	if err != nil || res != (c2.ReleaseResult{Released: 1, Commands: 2}) {
		t.Fatalf("release a: %+v, %v", res, err)
	}
	eventually(t, "the released device holds both keys", func() bool { return holds(t, svc, a.c, topics...) })
	eventually(t, "its commands settled as accepted", func() bool {
		ds, err := svc.DeviceSync(c2.ByName(a.name))
		return err == nil && ds.Pending == 0
	})
	ds, _ := svc.DeviceSync(c2.ByName(a.name))
	if ds.Status != "never_seen" || !ds.Released || ds.Seen {
		t.Fatalf("released device: status %q released %v seen %v", ds.Status, ds.Released, ds.Seen)
	}
	for _, row := range ds.Topics {
		if row.Accepted != row.Desired || row.Confirmed != 0 {
			t.Fatalf("topic %s: %+v, want accepted only", row.Name, row.KeySync)
		}
	}
	// b, connected all along but never released, got nothing: the worker
	// has had every chance (it delivered a's commands queued with b's).
	if ds, _ := svc.DeviceSync(c2.ByName(b.name)); ds.Pending != 2 || holds(t, svc, b.c, "rel/a") {
		t.Fatalf("unreleased device: pending %d (want 2), holds a key %v", ds.Pending, holds(t, svc, b.c, "rel/a"))
	}
	if f := svc.FleetSummary(); f.Waiting != 2 || f.Released != 1 {
		t.Fatalf("after one release: %+v", f)
	}

	all, err := svc.ReleaseAll(ctx, o)
	if err != nil || all != (c2.ReleaseResult{Released: 1, Commands: 2}) {
		t.Fatalf("release all: %+v, %v", all, err)
	}
	eventually(t, "the other device holds both keys", func() bool { return holds(t, svc, b.c, topics...) })
	// A released device's next command is not held.
	if _, err := svc.RotateTopic(ctx, o, "rel/a"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both hold the rotated key", func() bool {
		return holds(t, svc, a.c, topics...) && holds(t, svc, b.c, topics...)
	})
	if f := svc.FleetSummary(); f.Waiting != 0 || f.Released != 2 || f.NeverSeen != 2 {
		t.Fatalf("after release all: %+v", f)
	}
}

// Through a real mosquitto configured as e4c2 broker-config --sightings
// writes it (use_username_as_clientid, the subscription log on a topic):
// a device subscribing to its control topic counts as seen (device.seen,
// the worker woken) and gets the commands held for it, while a device that
// never connects keeps its commands in the C2's outbox.
func TestDeviceTruthExternalBrokerLogSightings(t *testing.T) {
	ctx := context.Background()
	o := c2.Origin{Actor: "test"}
	url := testbroker.StartMosquittoWith(t, "use_username_as_clientid true\nlog_dest topic\nlog_type notice\nlog_type subscribe\n").URL()
	// With use_username_as_clientid every client needs a username (this
	// broker has no password file: any name is accepted).
	srv := startWith(t, func(c *config.Config) { c.Broker, c.BrokerUsername, c.BrokerLogSightings = url, "e4c2", true }, nil)
	svc := srv.Service()
	a := registerOnly(t, srv, "log-a", domain.RoleBoth, nil)
	b := registerOnly(t, srv, "log-b", domain.RoleBoth, nil)
	topics := []string{"log/a", "log/b"}
	for _, tp := range topics {
		if _, err := svc.NewTopic(ctx, o, tp); err != nil {
			t.Fatal(err)
		}
		for _, f := range []*fleetDevice{a, b} {
			if _, err := svc.NewTopicClient(ctx, o, c2.ByName(f.name), tp); err != nil {
				t.Fatal(err)
			}
		}
	}
	if f := svc.FleetSummary(); f.Waiting != 4 {
		t.Fatalf("before any sighting: %+v", f)
	}
	a.connect(t, url)
	eventually(t, "a seen through the broker's log", func() bool {
		ds, err := svc.DeviceSync(c2.ByName(a.name))
		return err == nil && ds.Seen && !ds.Released
	})
	eventually(t, "a holds both keys", func() bool { return holds(t, svc, a.c, topics...) })
	eventually(t, "a in sync, accepted", func() bool {
		ds, err := svc.DeviceSync(c2.ByName(a.name))
		return err == nil && ds.Status == "in_sync" && ds.Evidence == "accepted"
	})
	if ds, _ := svc.DeviceSync(c2.ByName(b.name)); ds.Seen || ds.Pending != 2 {
		t.Fatalf("b, never connected: seen %v pending %d, want held", ds.Seen, ds.Pending)
	}
	// Later commands of a seen device go out at once.
	if _, err := svc.RotateTopic(ctx, o, "log/b"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a holds the rotated key", func() bool { return holds(t, svc, a.c, topics...) })
}

// A mixed fleet behind mosquitto with --device-acks: a device that
// acknowledges is confirmed by its acks, a device that cannot (here the
// library without Acks, like a reference device) is held until an operator
// releases it, then served with the grade "accepted", rotations included.
func TestDeviceTruthExternalBrokerAcksMixedFleet(t *testing.T) {
	ctx := context.Background()
	o := c2.Origin{Actor: "test"}
	url := testbroker.StartMosquitto(t, 0).URL()
	srv := startWith(t, func(c *config.Config) { c.Broker, c.DeviceAcks = url, true }, nil)
	svc := srv.Service()
	acker := registerOnly(t, srv, "mixed-acker", domain.RoleBoth, nil)
	ref := registerOnly(t, srv, "mixed-ref", domain.RoleBoth, nil)
	if _, err := svc.NewTopic(ctx, o, "mixed/t"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*fleetDevice{acker, ref} {
		if _, err := svc.NewTopicClient(ctx, o, c2.ByName(f.name), "mixed/t"); err != nil {
			t.Fatal(err)
		}
	}
	acker.dev = &device{name: acker.name, c: acker.c}
	d, err := e4mqtt.Connect(ctx, acker.c, e4mqtt.Config{BrokerURL: url, Acks: true, OnMessage: acker.dev.onMessage})
	if err != nil {
		t.Fatal(err)
	}
	acker.dev.d = d
	t.Cleanup(d.Close)
	ref.connect(t, url) // no acks
	state := func(f *fleetDevice) projections.DeviceSync {
		ds, err := svc.DeviceSync(c2.ByName(f.name))
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	eventually(t, "the acknowledging device confirmed", func() bool {
		ds := state(acker)
		return ds.Status == "in_sync" && ds.Evidence == "confirmed"
	})
	// Its command was queued with the other's: the worker had its chance.
	if ds := state(ref); ds.Pending != 1 || holds(t, svc, ref.c, "mixed/t") {
		t.Fatalf("the silent device before a release: pending %d, want 1 and no key", ds.Pending)
	}
	if _, err := svc.Release(ctx, o, c2.ByName(ref.name)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the released device holds the key", func() bool { return holds(t, svc, ref.c, "mixed/t") })
	eventually(t, "its command settled", func() bool { return state(ref).Pending == 0 })
	if ds := state(ref); ds.Topics[0].Accepted != ds.Topics[0].Desired || ds.Topics[0].Confirmed != 0 {
		t.Fatalf("released device: %+v, want accepted only", ds.Topics[0])
	}
	if _, err := svc.RotateTopic(ctx, o, "mixed/t"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both hold the rotated key", func() bool {
		return holds(t, svc, acker.c, "mixed/t") && holds(t, svc, ref.c, "mixed/t")
	})
	eventually(t, "the acknowledging device confirmed again", func() bool {
		ds := state(acker)
		return ds.Status == "in_sync" && ds.Evidence == "confirmed"
	})
}
