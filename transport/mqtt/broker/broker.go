package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
	"go.etcd.io/bbolt"
)

// DefaultAddress is where the embedded broker listens unless configured:
// loopback only, so that exposing it is a deliberate choice.
const DefaultAddress = "127.0.0.1:1883"

// ErrNotRunning is returned by Publish when the broker is not started (or
// was closed). Callers treat it as "broker unavailable", not as a failure of
// the message.
var ErrNotRunning = errors.New("broker: not running")

// Config configures the embedded broker.
type Config struct {
	// Address is the TCP listener's host:port (default DefaultAddress; port
	// 0 picks a free port, see Broker.Addr).
	Address string
	// TLS, if set, makes the listener TLS-only.
	TLS *tls.Config
	// MaxConns caps concurrent TCP connections (0: DefaultMaxConns()).
	MaxConns int
	// C2, if set, lets a TCP client that authenticates with these
	// credentials publish on "e4/#". The C2 normally publishes in process
	// (Publish) and needs no credentials.
	C2 *Credentials
	// Users, if not empty, are the device credentials (username ->
	// password) and anonymous connections are refused. Empty: anonymous
	// devices may connect (they still cannot publish on "e4/#").
	Users map[string]string
	// PersistPath, if set, is a bbolt file where the broker keeps sessions,
	// subscriptions and unacknowledged QoS 1/2 messages, so a broker
	// restart does not drop what it had accepted for offline devices.
	PersistPath string
	// PersistSync makes every change to the persistence file wait for
	// fsync. Off by default: with fsync each QoS 2 message costs about
	// five synchronous disk flushes (tens of messages per second on an
	// ordinary disk); without, the file survives a crash of the process
	// but maybe not of the machine. The C2's own queue is durable either
	// way: the broker's file only spares devices a resend.
	PersistSync bool
	// ReceiveMaximum is how many unacknowledged QoS 1/2 publishes a client
	// may have in flight towards the broker (mochi default 1024); past it
	// mochi disconnects the client.
	ReceiveMaximum uint16
	// MaxQueuedPerClient caps the QoS 1/2 messages the broker holds for one
	// client, unacknowledged or waiting to be written (mochi's maximum
	// in-flight and pending writes, default 8192, at most 65535 by packet
	// ids). Past it mochi drops the message for that client, although the
	// publisher got its confirmation: size it above the commands a device
	// can accumulate while offline.
	MaxQueuedPerClient int
	// Logger receives the broker's logs (default: slog.Default()).
	Logger *slog.Logger
	// WrapListener, if set, wraps the bound net.Listener: fault injection
	// for tests.
	WrapListener func(net.Listener) net.Listener
}

// Broker is an embedded MQTT broker. It can be started again after Close
// (a new mochi server on the same address), which is what tests of broker
// outages need.
type Broker struct {
	cfg Config

	mu    sync.RWMutex
	srv   *mqtt.Server
	ln    *Listener
	order *orderHook
	stop  func() bool // unregisters the ctx watcher
}

// New validates cfg and returns a stopped broker.
func New(cfg Config) (*Broker, error) {
	if cfg.Address == "" {
		cfg.Address = DefaultAddress
	}
	if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
		return nil, fmt.Errorf("broker: address %q: %w", cfg.Address, err)
	}
	if cfg.C2 != nil && (cfg.C2.Username == "" || cfg.C2.Password == "") {
		return nil, errors.New("broker: c2 credentials need a username and a password")
	}
	if cfg.C2 != nil {
		if _, dup := cfg.Users[cfg.C2.Username]; dup {
			return nil, errors.New("broker: c2 username is also a device username")
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Broker{cfg: cfg}, nil
}

// Start binds the listener and starts serving. The broker closes when ctx
// is done or Close is called.
func (b *Broker) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("broker: start: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		return errors.New("broker: already running")
	}
	caps := mqtt.NewDefaultServerCapabilities()
	if b.cfg.ReceiveMaximum > 0 {
		caps.ReceiveMaximum = b.cfg.ReceiveMaximum
	}
	if n := b.cfg.MaxQueuedPerClient; n > 0 {
		n = min(n, 65535)
		caps.MaximumInflight = uint16(n)
		caps.MaximumClientWritesPending = int32(n)
	}
	srv := mqtt.New(&mqtt.Options{
		InlineClient: true,
		Capabilities: caps,
		Logger:       b.cfg.Logger,
	})
	users := make(map[string][]byte, len(b.cfg.Users))
	for u, p := range b.cfg.Users {
		users[u] = digest(p)
	}
	hook := &authHook{c2: b.cfg.C2, users: users, anonymous: len(users) == 0}
	if err := srv.AddHook(hook, nil); err != nil {
		return fmt.Errorf("broker: auth hook: %w", err)
	}
	order := &orderHook{}
	order.srv.Store(srv)
	if err := srv.AddHook(order, nil); err != nil {
		return fmt.Errorf("broker: order hook: %w", err)
	}
	if b.cfg.PersistPath != "" {
		if err := srv.AddHook(persistHook{new(bolt.Hook)}, &bolt.Options{
			Path:    b.cfg.PersistPath,
			Options: &bbolt.Options{Timeout: time.Second, NoSync: !b.cfg.PersistSync},
		}); err != nil {
			return fmt.Errorf("broker: persistence: %w", err)
		}
	}
	ln := NewListener(ListenerConfig{
		ID: "tcp", Address: b.cfg.Address, TLS: b.cfg.TLS,
		MaxConns: b.cfg.MaxConns, Wrap: b.cfg.WrapListener,
	})
	if err := srv.AddListener(ln); err != nil {
		_ = srv.Close()
		return fmt.Errorf("broker: %w", err)
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return fmt.Errorf("broker: serve: %w", err)
	}
	b.srv, b.ln, b.order = srv, ln, order
	b.stop = context.AfterFunc(ctx, func() { b.closeServer(srv) })
	return nil
}

// Close stops the broker: it closes the listener and every client. It is
// safe to call more than once.
func (b *Broker) Close() error {
	b.mu.RLock()
	srv := b.srv
	b.mu.RUnlock()
	if srv == nil {
		return nil
	}
	return b.closeServer(srv)
}

func (b *Broker) closeServer(srv *mqtt.Server) error {
	b.mu.Lock()
	if b.srv != srv {
		b.mu.Unlock()
		return nil
	}
	b.srv, b.ln, b.order = nil, nil, nil
	if b.stop != nil {
		b.stop()
		b.stop = nil
	}
	b.mu.Unlock()
	if err := srv.Close(); err != nil {
		return fmt.Errorf("broker: close: %w", err)
	}
	return nil
}

// Running reports whether the broker is serving.
func (b *Broker) Running() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.srv != nil
}

// Addr returns the listener's bound address while running (useful with port
// 0), else the configured address.
func (b *Broker) Addr() string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.ln != nil {
		return b.ln.Address()
	}
	return b.cfg.Address
}

// ListenerStats returns the TCP listener's counters (zero when stopped).
func (b *Broker) ListenerStats() ListenerStats {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.ln == nil {
		return ListenerStats{}
	}
	return b.ln.Stats()
}

// Inflight returns the number of QoS 1/2 messages the broker holds
// unacknowledged, in both directions (0 when stopped).
func (b *Broker) Inflight() int64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.srv == nil {
		return 0
	}
	return atomic.LoadInt64(&b.srv.Info.Inflight)
}

// Publish hands a message to the broker in process, with QoS 2 and not
// retained, bypassing the network and the ACL. When it returns nil the
// broker has taken the message: each matching subscriber got it queued at
// min(2, its subscription QoS), and for a QoS 2 subscriber the broker now
// runs the PUBREC/PUBREL/PUBCOMP exchange itself, holding the message for
// an offline persistent session. That is the point a TCP publisher's
// PUBCOMP marks, so callers treat nil as "confirmed". It returns
// ErrNotRunning when the broker is stopped.
func (b *Broker) Publish(topic string, payload []byte) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.srv == nil {
		return ErrNotRunning
	}
	defer b.order.publishGate()()
	if err := b.srv.Publish(topic, payload, false, 2); err != nil {
		return fmt.Errorf("broker: publish: %w", err)
	}
	return nil
}
