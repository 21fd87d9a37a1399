package e4mqtt_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/e4c2/e4c2/client/credential"
	"github.com/e4c2/e4c2/internal/testwait"

	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/client/e4mqtt"
	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/standard"
	"github.com/e4c2/e4c2/transport/mqtt/broker"
)

// keyAuthority admits the SK devices whose keys it holds, to every
// non-control topic: this package's tests are about the device library,
// the broker's rules are tested in its own package.
type keyAuthority struct {
	mu     sync.Mutex
	keys   map[[16]byte][]byte
	denied map[string]bool
}

func (a *keyAuthority) deny(topic string, v bool) {
	a.mu.Lock()
	a.denied[topic] = v
	a.mu.Unlock()
}

func (a *keyAuthority) add(id, key []byte) {
	a.mu.Lock()
	a.keys[[16]byte(id)] = key
	a.mu.Unlock()
}

func (a *keyAuthority) Authenticate(u string, pw []byte) ([16]byte, bool) {
	id, ok := credential.ParseUsername(u)
	if !ok {
		return id, false
	}
	a.mu.Lock()
	key := a.keys[id]
	a.mu.Unlock()
	return id, key != nil && credential.VerifySK(key, id[:], pw)
}
func (a *keyAuthority) MaySubscribe(_ [16]byte, topic string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return !a.denied[topic]
}
func (a *keyAuthority) MayPublish([16]byte, string) bool { return true }

var devices = &keyAuthority{keys: map[[16]byte][]byte{}, denied: map[string]bool{}}

func startBroker(t *testing.T) *broker.Broker {
	t.Helper()
	b, err := broker.New(broker.Config{Address: "127.0.0.1:0", Authority: devices})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func newDevice(t *testing.T, name string, key []byte, url string, msgs chan e4mqtt.Message) *e4mqtt.Device {
	t.Helper()
	c, err := client.New(client.Config{Suite: standard.New(), Mode: core.SymKey, Name: name, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	devices.add(c.ID(), key)
	d, err := e4mqtt.Connect(context.Background(), c, e4mqtt.Config{
		BrokerURL: url, CleanSession: true, OnMessage: func(m e4mqtt.Message) { msgs <- m },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

func recv(t *testing.T, ch chan e4mqtt.Message) e4mqtt.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10 s")
	}
	return e4mqtt.Message{}
}

// A command published on the control topic is applied; then two devices
// exchange a protected message through a real broker.
func TestCommandThenExchange(t *testing.T) {
	b := startBroker(t)
	url := "tcp://" + b.Addr()
	s := standard.New()
	k1, _ := s.GenerateKey()
	k2, _ := s.GenerateKey()
	topicKey, _ := s.GenerateKey()
	in1, in2 := make(chan e4mqtt.Message, 8), make(chan e4mqtt.Message, 8)
	d1 := newDevice(t, "dev-1", k1, url, in1)
	d2 := newDevice(t, "dev-2", k2, url, in2)

	// The C2's part, by hand: SetTopicKey to each device on its control topic.
	cmd, err := core.EncodeSetTopicKey(topicKey, s.HashTopic("sensors/a"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dk := range []struct {
		d   *e4mqtt.Device
		key []byte
		in  chan e4mqtt.Message
	}{{d1, k1, in1}, {d2, k2, in2}} {
		prot, err := s.Protect(dk.key, cmd, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(dk.d.Client().ControlTopic(), prot); err != nil {
			t.Fatal(err)
		}
		if m := recv(t, dk.in); !m.Command || m.Err != nil {
			t.Fatalf("command not applied: %+v", m)
		}
		if !dk.d.Client().HasTopicKey("sensors/a") {
			t.Fatal("topic key missing after SetTopicKey")
		}
	}

	ctx := context.Background()
	if err := d2.Subscribe(ctx, "sensors/a"); err != nil {
		t.Fatal(err)
	}
	if err := d1.Publish(ctx, "sensors/a", []byte("21.5C")); err != nil {
		t.Fatal(err)
	}
	m := recv(t, in2)
	if m.Err != nil || !bytes.Equal(m.Payload, []byte("21.5C")) || m.Command {
		t.Fatalf("got %+v", m)
	}

	// A forged command (wrong key) is reported, not applied.
	bad, _ := s.Protect(k1, []byte{byte(core.CmdResetTopics)}, time.Now())
	if err := b.Publish(d2.Client().ControlTopic(), bad); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, in2); m.Err == nil {
		t.Fatal("forged command accepted")
	}
	if !d2.Client().HasTopicKey("sensors/a") {
		t.Fatal("forged ResetTopics was applied")
	}
}

// A topic the broker refuses (the device is not attached to it yet) is asked
// for again after every command the device applies: once the C2 attaches
// the device and sends the key, the subscription goes through.
func TestRefusedTopicRetriedAfterCommand(t *testing.T) {
	b := startBroker(t)
	url := "tcp://" + b.Addr()
	s := standard.New()
	k1, _ := s.GenerateKey()
	in := make(chan e4mqtt.Message, 8)
	d := newDevice(t, "late-sub", k1, url, in)
	devices.deny("late/topic", true)
	t.Cleanup(func() { devices.deny("late/topic", false) })
	if err := d.Subscribe(context.Background(), "late/topic"); err != nil {
		t.Fatal(err)
	}
	if got := d.Refused(); len(got) != 1 || got[0] != "late/topic" {
		t.Fatalf("Refused() = %v, want [late/topic]", got)
	}
	devices.deny("late/topic", false)
	topicKey, _ := s.GenerateKey()
	cmd, _ := core.EncodeSetTopicKey(topicKey, s.HashTopic("late/topic"))
	prot, _ := s.Protect(k1, cmd, time.Now())
	if err := b.Publish(d.Client().ControlTopic(), prot); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, in); !m.Command || m.Err != nil {
		t.Fatalf("command: %+v", m)
	}
	testwait.For(t, "the device to stop refusing the topic", func() bool { return len(d.Refused()) == 0 })
	msg, _ := d.Client().ProtectMessage([]byte("hello"), "late/topic")
	if err := b.Publish("late/topic", msg); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, in); m.Err != nil || string(m.Payload) != "hello" {
		t.Fatalf("message on the late topic: %+v", m)
	}
}
