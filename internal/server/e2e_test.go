package server_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/client/e4mqtt"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/server"
	"github.com/e4c2/e4c2/internal/testbroker"
	"github.com/e4c2/e4c2/internal/testwait"
	"github.com/e4c2/e4c2/suites"
	"github.com/e4c2/e4c2/suites/core"
)

// startServer runs a whole e4c2 in a temporary directory: embedded store,
// the embedded broker (brokerURL empty) or an external one, delivery, API.
func startServer(t *testing.T, suite, mode, brokerURL string) *server.Server {
	t.Helper()
	cfg := testConfig(t)
	cfg.Suite, cfg.Mode = suite, mode
	cfg.Broker = brokerURL
	// These devices send no acks: through an external broker they are
	// served as a fleet the C2 cannot see (the release tests cover the
	// default, which holds their commands).
	cfg.DeliverUnseen = brokerURL != ""
	return start(t, cfg, server.Options{})
}

// startWith runs a whole e4c2 in a temporary directory with the default
// configuration changed by mut (nil: none) and the given clock (nil: time.Now),
// shut down at the end of the test.
func startWith(t *testing.T, mut func(*config.Config), clock func() time.Time) *server.Server {
	t.Helper()
	cfg := testConfig(t)
	if mut != nil {
		mut(&cfg)
	}
	return start(t, cfg, server.Options{Clock: clock})
}

// device is a device-library client connected to the broker.
type device struct {
	name string
	c    *client.Client
	d    *e4mqtt.Device

	mu       sync.Mutex
	payloads [][]byte
	errs     []error
	commands int
}

func (d *device) onMessage(m e4mqtt.Message) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case m.Err != nil:
		d.errs = append(d.errs, fmt.Errorf("%s: %w", m.Topic, m.Err))
	case m.Command:
		d.commands++
	default:
		d.payloads = append(d.payloads, m.Payload)
	}
}

func (d *device) snapshot() (payloads [][]byte, errs []error, commands int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([][]byte(nil), d.payloads...), append([]error(nil), d.errs...), d.commands
}

// newDevice registers a device with the C2 and connects it to the broker.
func newDevice(t *testing.T, srv *server.Server, brokerURL, name string, role domain.Role) *device {
	t.Helper()
	ctx := context.Background()
	c := server.RegisterTestDevice(t, ctx, srv.Service(), c2.Origin{Actor: "test"}, name, role, nil)
	dev := &device{name: name, c: c}
	d, err := e4mqtt.Connect(ctx, c, e4mqtt.Config{BrokerURL: brokerURL, CleanSession: true, OnMessage: dev.onMessage})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	dev.d = d
	return dev
}

// watched are the devices whose errors fail a wait at once.
var watched struct {
	sync.Mutex
	devs []*device
}

// eventually polls cond until it holds or 30 s pass; a device error fails it
// at once, with the error.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, what, func() bool {
		watched.Lock()
		defer watched.Unlock()
		for _, d := range watched.devs {
			if _, errs, _ := d.snapshot(); len(errs) != 0 {
				t.Fatalf("waiting for %s: device %s: %v", what, d.name, errs)
			}
		}
		return cond()
	})
}

func topicKey(c *client.Client, topic string) []byte {
	st := c.State()
	tk, ok := st.Topics[hex.EncodeToString(c.Suite().HashTopic(topic))]
	if !ok {
		return nil
	}
	return tk.Key
}

type combo struct{ suite, mode string }

func combos() []combo {
	var out []combo
	for _, s := range suites.All() {
		for _, m := range s.Modes() {
			out = append(out, combo{s.Name(), m.String()})
		}
	}
	return out
}

// TestEndToEnd drives every C2 operation through the real server, broker and
// delivery worker into device-library clients, for every suite and mode,
// through the embedded broker and an external mosquitto.
func TestEndToEnd(t *testing.T) {
	for _, broker := range []string{"embedded", "mosquitto"} {
		for _, cb := range combos() {
			t.Run(broker+"/"+cb.suite+"-"+cb.mode, func(t *testing.T) {
				url := ""
				if broker == "mosquitto" {
					url = testbroker.StartMosquitto(t, 0).URL()
				}
				srv := startServer(t, cb.suite, cb.mode, url)
				if url == "" {
					url = "tcp://" + srv.MQTTAddr()
				}
				runScenario(t, srv, url)
			})
		}
	}
}

func runScenario(t *testing.T, srv *server.Server, url string) {
	ctx := context.Background()
	svc := srv.Service()
	o := c2.Origin{Actor: "test"}
	pkMode := svc.Mode() == core.PubKey
	pub := newDevice(t, srv, url, "sensor-1", domain.RolePublisher)
	sub := newDevice(t, srv, url, "display-1", domain.RoleConsumer)
	watched.Lock()
	watched.devs = []*device{pub, sub}
	watched.Unlock()
	const topic = "plant/boiler/temp"

	must := func(_ c2.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// new_topic + new_topic_client: each device receives SetTopicKey.
	must(svc.NewTopic(ctx, o, topic))
	must(svc.NewTopicClient(ctx, o, c2.ByName("sensor-1"), topic))
	must(svc.NewTopicClient(ctx, o, c2.ByName("display-1"), topic))
	eventually(t, "both devices hold the topic key", func() bool {
		return topicKey(pub.c, topic) != nil && topicKey(sub.c, topic) != nil
	})
	if !bytes.Equal(topicKey(pub.c, topic), topicKey(sub.c, topic)) {
		t.Fatal("devices hold different keys for one topic")
	}
	if pkMode {
		// send_client_pubkey both ways so each verifies the other.
		must(svc.SendClientPubKey(ctx, o, c2.ByName("display-1"), c2.ByName("sensor-1")))
		must(svc.SendClientPubKey(ctx, o, c2.ByName("sensor-1"), c2.ByName("display-1")))
		eventually(t, "pubkeys delivered", func() bool {
			return len(sub.c.State().PubKeys) == 1 && len(pub.c.State().PubKeys) == 1
		})
	}

	// Two devices exchange protected messages.
	if err := sub.d.Subscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if err := pub.d.Publish(ctx, topic, []byte("first reading")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the subscriber reads the message", func() bool {
		p, _, _ := sub.snapshot()
		return len(p) == 1
	})
	if p, errs, _ := sub.snapshot(); !bytes.Equal(p[0], []byte("first reading")) || len(errs) != 0 {
		t.Fatalf("payload %q errors %v", p[0], errs)
	}

	// A rotation while messages are in flight loses none (key transition).
	oldKey := topicKey(pub.c, topic)
	var sent atomic.Int64
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := pub.d.Publish(ctx, topic, []byte(fmt.Sprintf("reading %d", i))); err != nil {
				done <- err
				return
			}
			sent.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	// published reports whether n readings were sent; a publisher that
	// stopped on an error fails the test at once, with that error.
	published := func(n int64) func() bool {
		return func() bool {
			select {
			case err := <-done:
				t.Fatalf("the publisher stopped: %v", err)
			default:
			}
			return sent.Load() >= n
		}
	}
	eventually(t, "readings published before the rotation", published(10))
	must(svc.RotateTopic(ctx, o, topic)) // rotation
	eventually(t, "both devices hold the rotated key", func() bool {
		k1, k2 := topicKey(pub.c, topic), topicKey(sub.c, topic)
		return k1 != nil && !bytes.Equal(k1, oldKey) && bytes.Equal(k1, k2)
	})
	// Readings published under the new key too, not only across the switch.
	after := sent.Load()
	eventually(t, "readings published after the rotation", published(after+10))
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := int(sent.Load()) + 1
	eventually(t, fmt.Sprintf("all %d messages read across the rotation", want), func() bool {
		p, errs, _ := sub.snapshot()
		if len(errs) != 0 {
			t.Fatalf("messages lost across the rotation: %v", errs)
		}
		return len(p) >= want
	})
	if _, errs, _ := sub.snapshot(); len(errs) != 0 {
		t.Fatalf("messages lost across the rotation: %v", errs)
	}

	// remove_topic_client: RemoveTopic to that device only.
	must(svc.RemoveTopicClient(ctx, o, c2.ByName("display-1"), topic))
	eventually(t, "display-1 lost the topic key", func() bool { return topicKey(sub.c, topic) == nil })
	if topicKey(pub.c, topic) == nil {
		t.Fatal("sensor-1 lost a key it should keep")
	}

	// reset_client: ResetTopics.
	must(svc.NewTopic(ctx, o, "plant/other"))
	must(svc.NewTopicClient(ctx, o, c2.ByName("sensor-1"), "plant/other"))
	eventually(t, "second topic key", func() bool { return topicKey(pub.c, "plant/other") != nil })
	must(svc.ResetClient(ctx, o, c2.ByName("sensor-1")))
	eventually(t, "sensor-1 has no topic key", func() bool { return len(pub.c.State().Topics) == 0 })

	// remove_topic: RemoveTopic to every linked client.
	must(svc.NewTopicClient(ctx, o, c2.ByName("display-1"), "plant/other"))
	eventually(t, "display-1 holds plant/other", func() bool { return topicKey(sub.c, "plant/other") != nil })
	must(svc.RemoveTopic(ctx, o, "plant/other"))
	eventually(t, "plant/other removed", func() bool { return topicKey(sub.c, "plant/other") == nil })

	if !pkMode {
		// new_client_key: SetIdKey protected with the old key; the next
		// command is protected with the new one and still arrives.
		before := pub.c.State().Key
		must(svc.NewClientKey(ctx, o, c2.ByName("sensor-1")))
		eventually(t, "sensor-1 key rotated", func() bool { return !bytes.Equal(pub.c.State().Key, before) })
		must(svc.NewTopicClient(ctx, o, c2.ByName("sensor-1"), topic))
		eventually(t, "command under the new client key", func() bool { return topicKey(pub.c, topic) != nil })
	} else {
		// remove_client_pubkey, reset_client_pubkeys.
		must(svc.RemoveClientPubKey(ctx, o, c2.ByName("display-1"), c2.ByName("sensor-1")))
		eventually(t, "pubkey removed", func() bool { return len(sub.c.State().PubKeys) == 0 })
		must(svc.ResetClientPubKeys(ctx, o, c2.ByName("sensor-1")))
		eventually(t, "pubkeys reset", func() bool { return len(pub.c.State().PubKeys) == 0 })
		// new_c2_key: SetC2Key under the old pair, later commands under the new.
		before := pub.c.State().C2PublicKey
		must(svc.NewC2Key(ctx, o))
		eventually(t, "c2 key rotated on both devices", func() bool {
			return !bytes.Equal(pub.c.State().C2PublicKey, before) && !bytes.Equal(sub.c.State().C2PublicKey, before)
		})
		if !bytes.Equal(pub.c.State().C2PublicKey, svc.C2().PublicKey) {
			t.Fatal("device holds a c2 key that is not the C2's")
		}
		must(svc.NewTopicClient(ctx, o, c2.ByName("sensor-1"), topic))
		eventually(t, "command under the new C2 key", func() bool { return topicKey(pub.c, topic) != nil })
	}

	// remove_client with ResetTopics first.
	must(svc.RemoveClient(ctx, o, c2.ByName("sensor-1"), true))
	eventually(t, "removed client reset", func() bool { return len(pub.c.State().Topics) == 0 })

	for _, d := range []*device{pub, sub} {
		if _, errs, _ := d.snapshot(); len(errs) != 0 {
			t.Fatalf("%s saw errors: %v", d.name, errs)
		}
	}
	eventually(t, "delivery queue drained", func() bool { return svc.PendingCount() == 0 })
}
