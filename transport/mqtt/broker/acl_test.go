package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/e4c2/e4c2/internal/testwait"
)

// badCredentials is the CONNACK code for a refused credential in each
// protocol version (mochi maps "bad user name or password" to "not
// authorised", 0x05, for MQTT 3).
func badCredentials(version byte) byte {
	if version == 5 {
		return packets.ErrBadUsernameOrPassword.Code
	}
	return packets.V5CodesToV3[packets.ErrBadUsernameOrPassword].Code
}

func TestDeviceAuthentication(t *testing.T) {
	for _, v := range []byte{4, 5} {
		t.Run(fmt.Sprint("mqtt", v), func(t *testing.T) {
			auth := newAuthority()
			a, bID := auth.device(1), auth.device(2)
			var unregistered [16]byte
			unregistered[0] = 0xee
			b := startBroker(t, Config{Authority: auth, AllowAnonymous: true,
				C2:    &Credentials{Username: "c2", Password: "c2-secret"},
				Users: map[string]string{"app": "app-pw"}})

			// A persistent session of device a, subscribed to its topic.
			rc := mustDial(t, b.Addr(), rawConnect{version: v, clientID: clientID(a), user: user(a), pass: auth.password(a)})
			if codes := rc.subscribe(t, 2, ControlTopic(a)); codes[0] != 2 {
				t.Fatalf("suback %v", codes)
			}
			rc.conn.Close()
			testwait.For(t, "a offline", func() bool { return !b.Online(a) && b.ListenerStats().Active == 0 })

			for name, c := range map[string]rawConnect{
				"wrong password":             {clientID: clientID(a), user: user(a), pass: "nope"},
				"no password":                {clientID: clientID(a), user: user(a)},
				"other device's password":    {clientID: clientID(a), user: user(a), pass: auth.password(bID)},
				"wrong client id":            {clientID: "something", user: user(a), pass: auth.password(a)},
				"empty client id":            {clientID: "", user: user(a), pass: auth.password(a), clean: true},
				"stolen id, no credential":   {clientID: clientID(a)},
				"stolen id, other device":    {clientID: clientID(a), user: user(bID), pass: auth.password(bID)},
				"stolen id, c2":              {clientID: clientID(a), user: "c2", pass: "c2-secret"},
				"stolen id, static user":     {clientID: clientID(a), user: "app", pass: "app-pw"},
				"reserved prefix, anonymous": {clientID: "e4dev-x"},
				"in-process client's id":     {clientID: "inline", user: "c2", pass: "c2-secret"},
				"unregistered device":        {clientID: clientID(unregistered), user: user(unregistered), pass: auth.password(unregistered)},
				"upper-case id":              {clientID: "e4dev-" + fmt.Sprintf("%X", a[:]), user: fmt.Sprintf("%X", a[:]), pass: auth.password(a)},
			} {
				for _, clean := range []bool{true, false} {
					c.version, c.clean = v, clean || c.clientID == ""
					_, ack, err := dialRaw(t, b.Addr(), c)
					if err == nil && ack.ReasonCode == 0 {
						t.Errorf("%s (clean %v): accepted", name, clean)
					} else if err == nil && c.user != "" && c.user != "app" && ack.ReasonCode != badCredentials(v) {
						t.Errorf("%s: CONNACK code %#x, want %#x", name, ack.ReasonCode, badCredentials(v))
					}
				}
			}
			// The session of a is intact: it comes back present.
			_, ack, err := dialRaw(t, b.Addr(), rawConnect{version: v, clientID: clientID(a), user: user(a), pass: auth.password(a)})
			if err != nil || ack.ReasonCode != 0 || !ack.SessionPresent {
				t.Fatalf("device a after the attempts: %v, code %#x, session present %v", err, ack.ReasonCode, ack.SessionPresent)
			}
			testwait.For(t, "a online from its session", func() bool { return b.Online(a) })
		})
	}
}

func TestDevicesNeedAnAuthority(t *testing.T) {
	auth := newAuthority()
	a := auth.device(1)
	b := startBroker(t, Config{AllowAnonymous: true})
	_, ack, err := dialRaw(t, b.Addr(), rawConnect{version: 4, clientID: clientID(a), user: user(a), pass: auth.password(a), clean: true})
	if err == nil && ack.ReasonCode == 0 {
		t.Fatal("device accepted without an Authority")
	}
}

func TestClosedByDefault(t *testing.T) {
	b := startBroker(t, Config{C2: &Credentials{Username: "c2", Password: "c2-secret"}})
	if _, err := connect(t, b.Addr(), "anon", "", ""); err == nil {
		t.Fatal("anonymous client accepted by default")
	}
	if _, err := connect(t, b.Addr(), "someone", "someone", "pw"); err == nil {
		t.Fatal("unknown user accepted by default")
	}
	c2, err := connect(t, b.Addr(), "c2-client", "c2", "c2-secret")
	if err != nil {
		t.Fatalf("c2 refused: %v", err)
	}
	r := subscribe(t, c2, "e4/#")
	if err := b.Publish("e4/aa", []byte("x")); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "c2 receives", func() bool { return len(r.snapshot()) == 1 })
}

// A device gets its own control topic and what the Authority allows, and
// nothing else, whatever filter it tries; refused filters get a failure
// code in SUBACK and no message, in MQTT 3.1.1 and 5.
func TestDeviceSubscribeACL(t *testing.T) {
	for _, v := range []byte{4, 5} {
		t.Run(fmt.Sprint("mqtt", v), func(t *testing.T) {
			auth := newAuthority()
			a, other := auth.device(1), auth.device(2)
			auth.subscribe["fleet/news"] = true
			b := startBroker(t, Config{Authority: auth})
			rc := mustDial(t, b.Addr(), rawConnect{version: v, clientID: clientID(a), user: user(a), pass: auth.password(a), clean: true})
			filters := []string{ControlTopic(a), ControlTopic(other), "#", "+/" + user(other), "e4/#", "e4/+",
				"fleet/news", "fleet/secret", "fleet/#", "$SYS/#", "$share/g/" + ControlTopic(other), "e4"}
			codes := rc.subscribe(t, 2, filters...)
			fail := byte(0x80)
			if v == 5 {
				fail = packets.ErrNotAuthorized.Code
			}
			for i, f := range filters {
				want := fail
				if i == 0 || f == "fleet/news" {
					want = 2
				}
				if f == "$share/g/"+ControlTopic(other) && codes[i] >= 0x80 {
					want = codes[i] // refused either way (invalid or not authorised)
				}
				if codes[i] != want {
					t.Errorf("filter %q: SUBACK %#x, want %#x", f, codes[i], want)
				}
			}
			for _, topic := range []string{ControlTopic(other), "fleet/secret", "fleet/news", "e4", ControlTopic(a)} {
				if err := b.Publish(topic, []byte(topic)); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			for {
				pk, err := rc.read(3 * time.Second)
				if err != nil {
					t.Fatalf("read: %v (got %q)", err, got)
				}
				if pk.FixedHeader.Type != packets.Publish {
					continue
				}
				got = append(got, pk.TopicName)
				if pk.FixedHeader.Qos == 2 {
					_ = rc.ack(packets.Pubrec, pk.PacketID)
				}
				if pk.TopicName == ControlTopic(a) {
					break // the last one published: everything before arrived
				}
			}
			if len(got) != 2 || got[0] != "fleet/news" {
				t.Fatalf("device received %q, want fleet/news then its control topic", got)
			}
		})
	}
}

// A device publishes only where MayPublish allows, never on e4/#, also as
// a will.
func TestDevicePublishACL(t *testing.T) {
	for _, v := range []byte{4, 5} {
		t.Run(fmt.Sprint("mqtt", v), func(t *testing.T) {
			auth := newAuthority()
			a := auth.device(1)
			auth.publish["fleet/telemetry"] = true
			auth.publish[ControlTopic(a)] = true // must be ignored
			b := startBroker(t, Config{Authority: auth, C2: &Credentials{Username: "c2", Password: "pw"}})
			mon, err := connect(t, b.Addr(), "mon", "c2", "pw")
			if err != nil {
				t.Fatal(err)
			}
			r := subscribe(t, mon, "#")
			dev := func() *rawClient {
				return mustDial(t, b.Addr(), rawConnect{version: v, clientID: clientID(a), user: user(a), pass: auth.password(a), clean: true})
			}
			for _, topic := range []string{ControlTopic(a), "e4/" + user(auth.device(9)), "e4", "fleet/other", "fleet/telemetry"} {
				rc := dev()
				if err := rc.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
					TopicName: topic, PacketID: 7, Payload: []byte(topic)}); err != nil {
					t.Fatal(err)
				}
				// mochi answers a refused QoS 1 publish with a disconnect
				// (3.1.1) or a failure PUBACK (5); an allowed one with PUBACK.
				pk, err := rc.read(3 * time.Second)
				allowed := topic == "fleet/telemetry"
				switch {
				case allowed && (err != nil || pk.FixedHeader.Type != packets.Puback || pk.ReasonCode >= 0x80):
					t.Errorf("%s: allowed publish not acknowledged: %v %+v", topic, err, pk.FixedHeader)
				case !allowed && err == nil && pk.FixedHeader.Type == packets.Puback && pk.ReasonCode < 0x80:
					t.Errorf("%s: refused publish acknowledged (id %d code %#x rem %d)", topic, pk.PacketID, pk.ReasonCode, pk.FixedHeader.Remaining)
				}
				rc.conn.Close()
			}
			// A will on a control topic is refused at CONNECT.
			if _, ack, err := dialRaw(t, b.Addr(), rawConnect{version: v, clientID: clientID(a), user: user(a),
				pass: auth.password(a), clean: true, will: ControlTopic(a)}); err == nil && ack.ReasonCode == 0 {
				t.Error("will on the control topic accepted")
			}
			if err := b.Publish("zz/marker", nil); err != nil {
				t.Fatal(err)
			}
			// The allowed publish and the marker: the monitor's queue is not
			// ordered across a device's QoS 1 publish and the broker's own
			// QoS 2 one, so wait for both, then check nothing else came.
			testwait.For(t, "marker and allowed publish", func() bool {
				got := r.snapshot()
				return contains(got, "zz/marker=") && contains(got, "fleet/telemetry=fleet/telemetry")
			})
			if got := r.snapshot(); len(got) != 2 {
				t.Fatalf("monitor saw %q, want only the allowed publish and the marker", got)
			}
		})
	}
}

func TestAnonymousReadTopics(t *testing.T) {
	b := startBroker(t, Config{AnonymousReadTopics: []string{"public/news"},
		C2: &Credentials{Username: "c2", Password: "pw"}})
	rc := mustDial(t, b.Addr(), rawConnect{version: 4, clientID: "reader", clean: true})
	codes := rc.subscribe(t, 1, "public/news", "public/#", "#", "public/other", "e4/#")
	if string(codes) != string([]byte{1, 0x80, 0x80, 0x80, 0x80}) {
		t.Fatalf("suback %x, want 01 80 80 80 80", codes)
	}
	// Publishing is refused (QoS 1: disconnected).
	w := mustDial(t, b.Addr(), rawConnect{version: 4, clientID: "writer", clean: true})
	_ = w.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: "public/news", PacketID: 1, Payload: []byte("forged")})
	if pk, err := w.read(3 * time.Second); err == nil && pk.FixedHeader.Type == packets.Puback {
		t.Fatal("anonymous publish acknowledged")
	}
	for _, topic := range []string{"public/other", "public/news"} {
		if err := b.Publish(topic, []byte("c2")); err != nil {
			t.Fatal(err)
		}
	}
	pk, err := rc.read(3 * time.Second)
	if err != nil || pk.TopicName != "public/news" || string(pk.Payload) != "c2" {
		t.Fatalf("reader got %q %q (%v), want public/news from the c2 first", pk.TopicName, pk.Payload, err)
	}
	if _, err := New(Config{AnonymousReadTopics: []string{"public/#"}}); err == nil {
		t.Fatal("wildcard accepted as an anonymous read topic")
	}
}

func TestStaticUsersNoControlTopics(t *testing.T) {
	b := startBroker(t, Config{Users: map[string]string{"app": "pw"}})
	rc := mustDial(t, b.Addr(), rawConnect{version: 4, clientID: "app1", user: "app", pass: "pw", clean: true})
	codes := rc.subscribe(t, 2, "e4/#", "#", "app/x")
	if string(codes) != string([]byte{0x80, 2, 2}) {
		t.Fatalf("suback %x, want 80 02 02", codes)
	}
	if err := b.Publish("e4/"+user(newAuthority().device(1)), []byte("cmd")); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("app/x", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	pk, err := rc.read(3 * time.Second)
	if err != nil || pk.TopicName != "app/x" {
		t.Fatalf("user got %q (%v), want app/x first: the control message must not reach it through #", pk.TopicName, err)
	}
}

// mochi runs the ACL on the topic as sent, before an MQTT 5 topic alias is
// resolved; the OnPublish check after resolution refuses an alias to a
// topic the device may no longer publish on.
func TestTopicAliasRechecked(t *testing.T) {
	auth := newAuthority()
	a := auth.device(1)
	auth.publish["fleet/t"] = true
	b := startBroker(t, Config{Authority: auth, C2: &Credentials{Username: "c2", Password: "pw"}})
	mon, err := connect(t, b.Addr(), "mon", "c2", "pw")
	if err != nil {
		t.Fatal(err)
	}
	r := subscribe(t, mon, "#")
	rc := mustDial(t, b.Addr(), rawConnect{version: 5, clientID: clientID(a), user: user(a), pass: auth.password(a), clean: true})
	pub := func(topic, payload string) {
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: topic, Payload: []byte(payload)}
		pk.Properties.TopicAlias, pk.Properties.TopicAliasFlag = 1, true
		if err := rc.send(pk); err != nil {
			t.Fatal(err)
		}
	}
	pub("fleet/t", "allowed")
	testwait.For(t, "allowed publish", func() bool { return contains(r.snapshot(), "fleet/t=allowed") })
	auth.mu.Lock()
	delete(auth.publish, "fleet/t")
	auth.mu.Unlock()
	pub("", "through-alias")
	pub("fleet/t", "direct")
	rc.roundTrip(t) // the broker has handled both
	if err := b.Publish("zz/marker", nil); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "marker", func() bool { return contains(r.snapshot(), "zz/marker=") })
	if got := r.snapshot(); contains(got, "fleet/t=through-alias") || contains(got, "fleet/t=direct") {
		t.Fatalf("monitor got %q: revoked topic published", got)
	}
}
