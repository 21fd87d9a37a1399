package broker

import (
	"sync"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

type tapped struct {
	device   [16]byte
	isDevice bool
	topic    string
	payload  string
}

type tapRecorder struct {
	mu  sync.Mutex
	got []tapped
}

func (r *tapRecorder) Published(device [16]byte, isDevice bool, topic string, payload []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, tapped{device, isDevice, topic, string(payload)})
}

func (r *tapRecorder) all() []tapped {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tapped(nil), r.got...)
}

// The publish tap sees what devices and users publish and the ACL lets
// through, with the publishing device; never a refused publish, a control
// topic or the C2's in-process publishes. A device cannot read a topic
// through a shared subscription ($share is reserved to the C2 and users).
func TestPublishTap(t *testing.T) {
	auth := newAuthority()
	a := auth.device(1)
	auth.publish["plant/t1"] = true
	auth.subscribe["plant/t1"] = true
	rec := &tapRecorder{}
	b := startBroker(t, Config{Authority: auth, Users: map[string]string{"app": "app-pw"}, Tap: rec})

	dev := mustDial(t, b.Addr(), rawConnect{version: 4, clientID: clientID(a), user: user(a), pass: auth.password(a), clean: true})
	if codes := dev.subscribe(t, 1, "$share/g/plant/t1"); codes[0] < 0x80 {
		t.Fatalf("a device subscribed with $share: code %#x", codes[0])
	}
	pub := func(c *rawClient, topic, payload string) {
		t.Helper()
		if err := c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: topic, Payload: []byte(payload)}); err != nil {
			t.Fatal(err)
		}
	}
	pub(dev, "plant/t1", "from the device")
	pub(dev, "plant/t2", "refused by the ACL")
	dev.roundTrip(t)
	app := mustDial(t, b.Addr(), rawConnect{version: 4, clientID: "app-1", user: "app", pass: "app-pw", clean: true})
	pub(app, "plant/t2", "from a user")
	app.roundTrip(t)
	if err := b.Publish("plant/t1", []byte("in process")); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ControlTopic(a), []byte("a command")); err != nil {
		t.Fatal(err)
	}
	want := []tapped{{a, true, "plant/t1", "from the device"}, {[16]byte{}, false, "plant/t2", "from a user"}}
	got := rec.all()
	if len(got) != len(want) {
		t.Fatalf("tapped %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("tapped %+v, want %+v", got, want)
		}
	}
}
