package mqtt

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/e4c2/e4c2/internal/testbroker"
	"github.com/e4c2/e4c2/transport/mqtt/broker"
)

// Test helpers for real brokers: the embedded mochi broker and an external
// mosquitto started by the test.

// startMosquitto starts a real mosquitto (internal/testbroker), or skips
// the test if it is not installed. persist keeps sessions and queued
// messages across a graceful restart (Stop then Start).
func startMosquitto(t testing.TB, persist bool) *testbroker.Mosquitto {
	t.Helper()
	if persist {
		return testbroker.StartMosquittoPersistent(t, 0)
	}
	return testbroker.StartMosquitto(t, 0)
}

// subscriber is a device-like paho client: persistent session, QoS 2 on
// "e4/#", reconnecting by itself.
type subscriber struct {
	mu    sync.Mutex
	msgs  []string
	c     paho.Client
	store *paho.MemoryStore // paho's session state, read by settled
}

// monitor is the account the test subscriber reads every control topic with
// on the embedded broker: only the C2's credentials may read "e4/#".
var monitor = broker.Credentials{Username: "e4c2", Password: "test-c2-password"}

func newSubscriber(t testing.TB, url, id string) *subscriber {
	t.Helper()
	s := &subscriber{store: paho.NewMemoryStore()}
	subscribed := make(chan error, 1)
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetStore(s.store).
		SetUsername(monitor.Username).SetPassword(monitor.Password).
		SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(50 * time.Millisecond).SetMaxReconnectInterval(100 * time.Millisecond).
		SetDefaultPublishHandler(s.handle).
		SetOnConnectHandler(func(c paho.Client) {
			// Subscribing again is harmless with a resumed session and
			// needed when the broker lost it.
			tok := c.Subscribe("e4/#", 2, s.handle)
			tok.Wait()
			select {
			case subscribed <- tok.Error():
			default:
			}
		})
	s.c = paho.NewClient(o)
	s.c.Connect()
	select {
	case err := <-subscribed:
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("subscriber did not connect")
	}
	t.Cleanup(func() { s.c.Disconnect(50) })
	return s
}

// settled reports whether every QoS 2 publish the subscriber received is
// past the point where the broker could send it again: paho keeps a
// received QoS 2 publish in its store (key "i.<id>") until it answers the
// broker's PUBREL, and a broker sends PUBREL only once it has the PUBREC,
// after which it never resends the publish itself.
func (s *subscriber) settled() bool {
	for _, k := range s.store.All() {
		if strings.HasPrefix(k, "i.") {
			return false
		}
	}
	return true
}

func (s *subscriber) handle(_ paho.Client, m paho.Message) {
	s.mu.Lock()
	s.msgs = append(s.msgs, string(m.Payload()))
	s.mu.Unlock()
}

func (s *subscriber) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

func (s *subscriber) distinct() int {
	seen := map[string]bool{}
	for _, m := range s.received() {
		seen[m] = true
	}
	return len(seen)
}

// brokerEnv is a real broker plus a way to make the C2's publisher for it.
type brokerEnv struct {
	name      string
	url       string // for device-side clients
	publisher func(t testing.TB) Publisher
	stop      func()
	restart   func()
	// settled reports whether the broker has no QoS exchange in progress,
	// as far as it lets us see (the subscriber's side is seen by
	// subscriber.settled).
	settled func() bool
}

func embeddedBroker(t testing.TB, c2 *broker.Credentials, persist bool) *broker.Broker {
	t.Helper()
	cfg := broker.Config{
		Address:            testbroker.FreeAddr(t),
		C2:                 c2,
		Logger:             quietLogger(),
		MaxQueuedPerClient: 65535,
		// These tests drive the publisher side with plain subscribers
		// (broker acceptance); device authentication is tested in
		// broker/ and end to end in internal/server.
		AllowAnonymous: true,
	}
	if persist {
		cfg.PersistPath = filepath.Join(t.TempDir(), "broker.db")
	}
	return startEmbedded(t, cfg)
}

// startEmbedded starts an embedded broker with cfg (default: a free local
// port, a quiet logger), closed at the end of the test.
func startEmbedded(t testing.TB, cfg broker.Config) *broker.Broker {
	t.Helper()
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func newPaho(t testing.TB, cfg PahoConfig) *Paho {
	t.Helper()
	cfg.MaxReconnectInterval = 100 * time.Millisecond
	cfg.ConnectTimeout = 2 * time.Second
	p, err := NewPaho(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return p
}

var envKinds = []string{"embedded-inprocess", "embedded-tcp", "mosquitto"}

func newEnv(t testing.TB, kind string) *brokerEnv {
	t.Helper()
	return newEnvOpts(t, kind, true)
}

// newEnvOpts makes a broker environment; persist gives the embedded broker
// a persistence file and mosquitto persistence.
func newEnvOpts(t testing.TB, kind string, persist bool) *brokerEnv {
	t.Helper()
	switch kind {
	case "embedded-inprocess":
		b := embeddedBroker(t, &monitor, persist)
		return &brokerEnv{
			name: kind, url: "tcp://" + b.Addr(),
			publisher: func(testing.TB) Publisher { return NewInProcess(b, 0) },
			stop:      func() { _ = b.Close() },
			settled:   func() bool { return b.Inflight() == 0 },
			restart: func() {
				if err := b.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
			},
		}
	case "embedded-tcp":
		c2 := &monitor
		b := embeddedBroker(t, c2, persist)
		url := "tcp://" + b.Addr()
		return &brokerEnv{
			name: kind, url: url,
			publisher: func(t testing.TB) Publisher {
				return newPaho(t, PahoConfig{BrokerURL: url, Username: c2.Username, Password: c2.Password, MaxInflight: DefaultWindowEmbedded})
			},
			stop:    func() { _ = b.Close() },
			settled: func() bool { return b.Inflight() == 0 },
			restart: func() {
				if err := b.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
			},
		}
	case "mosquitto":
		m := startMosquitto(t, persist)
		return &brokerEnv{
			name: kind, url: m.URL(),
			publisher: func(t testing.TB) Publisher { return newPaho(t, PahoConfig{BrokerURL: m.URL()}) },
			stop:      m.Stop,
			restart:   m.Start,
			// mosquitto shows nothing of its exchanges: the subscriber's
			// side is what tells (subscriber.settled).
			settled: func() bool { return true },
		}
	}
	t.Fatalf("unknown broker kind %q", kind)
	return nil
}

var subscriberSeq struct {
	sync.Mutex
	n int
}

func subscriberID() string {
	subscriberSeq.Lock()
	defer subscriberSeq.Unlock()
	subscriberSeq.n++
	return "device-" + strconv.Itoa(os.Getpid()) + "-" + strconv.Itoa(subscriberSeq.n)
}
