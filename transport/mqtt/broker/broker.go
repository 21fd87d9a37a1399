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

	"github.com/e4c2/e4c2/client/credential"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.etcd.io/bbolt"
)

// DefaultAddress is where the embedded broker listens unless configured:
// loopback only, so that exposing it is a deliberate choice.
const DefaultAddress = "127.0.0.1:1883"

// Defaults of the limits in Config.
const (
	DefaultMaxQueuedPerClient  = 1024
	DefaultMaxPendingWrites    = 128
	DefaultMaxPacketSize       = 1 << 20
	DefaultSessionExpiry       = time.Hour
	DefaultDeviceSessionExpiry = 7 * 24 * time.Hour
)

// Per-connection buffer sizes. mochi's defaults (2 KiB each) are sized
// for throughput; an E4 device connection is idle nearly always, and at
// 10,000 devices every byte per connection counts. A packet larger than
// the read buffer is still read whole (the buffer only batches reads); the
// write buffer is only used while writes queue up.
const (
	clientReadBufferSize  = 512
	clientWriteBufferSize = 1024
)

// frontSubID identifies the front end's inline subscription.
const frontSubID = 1

// ErrNotRunning is returned by Publish when the broker is not started (or
// was closed). Callers treat it as "broker unavailable", not as a failure of
// the message.
// It reports Unavailable() true, so a publisher can recognise it without
// importing this package.
var ErrNotRunning error = stateError{msg: "broker: not running", unavailable: true}

// stateError is an error about the broker's or a device's state, with the
// behaviour methods callers test through errors.As (transport/mqtt does,
// so the dependency points from the broker's user to nothing here).
type stateError struct {
	msg                  string
	unavailable, offline bool
}

func (e stateError) Error() string { return e.msg }

// Unavailable reports whether the broker itself cannot take messages.
func (e stateError) Unavailable() bool { return e.unavailable }

// DeviceOffline reports whether the device is not connected.
func (e stateError) DeviceOffline() bool { return e.offline }

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
	// credentials publish and subscribe anywhere, "e4/#" included. The C2
	// normally publishes in process (Publish, Deliver) and needs no
	// credentials.
	C2 *Credentials
	// Authority authenticates devices and decides their non-control
	// topics. A client whose username is a device id (32 lower-case hex
	// characters) is a device: it must use the client id "e4dev-" + that
	// username and pass Authority.Authenticate, else its CONNECT is
	// refused. A device may read its own control topic and what
	// MaySubscribe allows (exact topic names: wildcards are refused), and
	// publish where MayPublish allows, never on "e4/#". Nil: no device can
	// connect.
	Authority Authority
	// Users are static non-device credentials (username -> password): such
	// a user may subscribe and publish anywhere but on the control topics.
	// When set, a client presenting another (non-device) username is
	// refused.
	Users map[string]string
	// AnonymousReadTopics are the exact topic names a client without
	// credentials may subscribe to (never publish). Setting it lets
	// anonymous clients connect.
	AnonymousReadTopics []string
	// AllowAnonymous is the legacy open mode: anonymous clients may
	// subscribe and publish on any topic but the control topics (a
	// wildcard subscription still receives no control message). Off by
	// default: with no Authority, Users, AnonymousReadTopics or
	// AllowAnonymous only the C2 can connect.
	AllowAnonymous bool
	// Observer, if set, hears devices come online (subscribed to their
	// control topic) and go offline.
	Observer Observer
	// Tap, if set, sees every application message clients publish (the
	// traffic monitor's source; see PublishTap).
	Tap PublishTap
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
	// client, unacknowledged or queued while it is offline (mochi's
	// maximum in-flight; default DefaultMaxQueuedPerClient, at most 65535
	// by packet ids). Past it mochi drops the message for that client,
	// although an in-process publisher got its confirmation (Deliver does
	// not): size it above the commands a device can accumulate while
	// offline.
	MaxQueuedPerClient int
	// MaxPendingWrites caps the packets waiting for a connected client's
	// socket (mochi's per-client write channel; default
	// DefaultMaxPendingWrites). It costs 8 bytes per slot on every
	// session, idle or not, so it is small. mochi drops a message that
	// finds the channel full, for good; in-process publishes (Publish,
	// Deliver) to a device's control topic therefore wait while the device
	// has half of it queued. Other traffic (TCP publishers, non-device
	// subscribers) is not held back and can be dropped past it. Devices
	// served by the front end (MQTT 3.1.1, see doc.go) do not use the
	// channel: their messages are written at once, a write that blocks
	// for 10 s disconnecting the device (its messages stay queued in its
	// session).
	MaxPendingWrites int
	// MaxPacketSize caps the size of a packet a client may send (default
	// DefaultMaxPacketSize). mochi disconnects a client that exceeds it,
	// before allocating the packet.
	MaxPacketSize int
	// SessionExpiry is how long the broker keeps the persistent session
	// of a disconnected client that is not a device (default
	// DefaultSessionExpiry): anybody may open sessions under fresh client
	// ids, so they must not accumulate.
	SessionExpiry time.Duration
	// DeviceSessionExpiry is how long the broker keeps the persistent
	// session (subscriptions, queued commands) of a disconnected device
	// (default DefaultDeviceSessionExpiry). The C2 keeps its own queue, so
	// this only bounds how long a device gets commands straight from the
	// broker on reconnect.
	DeviceSessionExpiry time.Duration
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

	mu      sync.RWMutex
	srv     *mqtt.Server
	ln      *Listener
	order   *orderHook
	devices *deviceHook
	reaper  *reaper
	front   *frontEnd
	stop    func() bool // unregisters the ctx watcher
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
	if cfg.MaxQueuedPerClient <= 0 {
		cfg.MaxQueuedPerClient = DefaultMaxQueuedPerClient
	}
	cfg.MaxQueuedPerClient = min(cfg.MaxQueuedPerClient, 65535)
	if cfg.MaxPendingWrites <= 0 {
		cfg.MaxPendingWrites = DefaultMaxPendingWrites
	}
	if cfg.MaxPacketSize <= 0 {
		cfg.MaxPacketSize = DefaultMaxPacketSize
	}
	if cfg.SessionExpiry <= 0 {
		cfg.SessionExpiry = DefaultSessionExpiry
	}
	if cfg.DeviceSessionExpiry <= 0 {
		cfg.DeviceSessionExpiry = DefaultDeviceSessionExpiry
	}
	for _, t := range cfg.AnonymousReadTopics {
		if t == "" || hasWildcard(t) || IsControlTopic(t) {
			return nil, fmt.Errorf("broker: anonymous read topic %q: must be a topic name outside %s/#", t, ControlPrefix)
		}
	}
	for u := range cfg.Users {
		if _, dev := credential.ParseUsername(u); dev {
			return nil, fmt.Errorf("broker: user %q: a device id is not a static username", u)
		}
	}
	if cfg.C2 != nil {
		if _, dev := credential.ParseUsername(cfg.C2.Username); dev {
			return nil, errors.New("broker: c2 username is a device id")
		}
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
	caps.MaximumInflight = uint16(b.cfg.MaxQueuedPerClient)
	caps.MaximumClientWritesPending = int32(b.cfg.MaxPendingWrites)
	caps.MaximumPacketSize = uint32(b.cfg.MaxPacketSize)
	// mochi expires every MQTT 3 session after this; the reaper expires
	// them sooner, by kind, so this is only a backstop.
	caps.MaximumSessionExpiryInterval = uint32(min(
		max(b.cfg.SessionExpiry, b.cfg.DeviceSessionExpiry)/time.Second+3600, 1<<32-1))
	srv := mqtt.New(&mqtt.Options{
		InlineClient:             true,
		Capabilities:             caps,
		Logger:                   slog.New(quietFirstStart{b.cfg.Logger.Handler()}),
		ClientNetReadBufferSize:  clientReadBufferSize,
		ClientNetWriteBufferSize: clientWriteBufferSize,
	})
	users := make(map[string][]byte, len(b.cfg.Users))
	for u, p := range b.cfg.Users {
		users[u] = digest(p)
	}
	anonRead := make(map[string]bool, len(b.cfg.AnonymousReadTopics))
	for _, t := range b.cfg.AnonymousReadTopics {
		anonRead[t] = true
	}
	hook := &authHook{c2: b.cfg.C2, users: users, authority: b.cfg.Authority,
		anonymous: b.cfg.AllowAnonymous, anonRead: anonRead}
	order := &orderHook{}
	order.srv.Store(srv)
	devices := &deviceHook{auth: hook, obs: b.cfg.Observer, room: max(b.cfg.MaxPendingWrites/2, 1)}
	rp := &reaper{srv: srv, auth: hook, devices: devices,
		expiry: b.cfg.SessionExpiry, deviceExpiry: b.cfg.DeviceSessionExpiry}
	front := &frontEnd{srv: srv, auth: hook, order: order, devices: devices,
		maxPacket: b.cfg.MaxPacketSize, log: b.cfg.Logger}
	hooks := []mqtt.Hook{hook, order, devices}
	if b.cfg.Tap != nil {
		hooks = append(hooks, &tapHook{auth: hook, tap: b.cfg.Tap})
	}
	if b.cfg.PersistPath != "" {
		rp.store = new(bolt.Hook)
		hooks = append(hooks, persistHook{rp.store})
	}
	// The reaper after the store: its OnClientExpired runs first, ours then
	// removes the rest of the session. The front end last: it writes what
	// the others (the store above all) have seen.
	hooks = append(hooks, rp, &frontHook{fe: front})
	for _, h := range hooks {
		var config any
		if p, ok := h.(persistHook); ok {
			config = &bolt.Options{
				Path:    b.cfg.PersistPath,
				Options: &bbolt.Options{Timeout: time.Second, NoSync: !b.cfg.PersistSync},
			}
			h = p
		}
		if err := srv.AddHook(h, config); err != nil {
			return fmt.Errorf("broker: hook %s: %w", h.ID(), err)
		}
	}
	front.hooks = hooks
	if p, err := newPoller(); err == nil {
		front.poll = p
		front.startSweep()
	} else {
		b.cfg.Logger.Debug("broker: device sessions without the poller", "error", err)
	}
	started := false
	defer func() {
		if !started && front.poll != nil {
			front.stopSweepWait()
			front.poll.close()
		}
	}()
	ln := NewListener(ListenerConfig{
		ID: "tcp", Address: b.cfg.Address, TLS: b.cfg.TLS,
		MaxConns: b.cfg.MaxConns, Wrap: b.cfg.WrapListener,
		CloseClients: func(id string) { front.closeAll(); closeClients(srv, id) },
		Front:        front.serve,
	})
	if err := srv.AddListener(ln); err != nil {
		_ = srv.Close()
		return fmt.Errorf("broker: %w", err)
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return fmt.Errorf("broker: serve: %w", err)
	}
	// QoS 0 messages for front-end sessions (see frontEnd.qos0).
	if err := srv.Subscribe("#", frontSubID, front.qos0); err != nil {
		_ = srv.Close()
		return fmt.Errorf("broker: front end: %w", err)
	}
	b.srv, b.ln, b.order, b.devices, b.reaper, b.front = srv, ln, order, devices, rp, front
	started = true
	rp.start()
	b.stop = context.AfterFunc(ctx, func() { b.closeServer(srv) })
	return nil
}

// closeClients disconnects the clients of listener id, like mochi's
// closeListenerClients but without its double read lock (see
// ListenerConfig.CloseClients).
func closeClients(srv *mqtt.Server, id string) {
	for _, cl := range srv.Clients.GetAll() {
		if cl.Net.Listener == id && !cl.Closed() {
			_ = srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
		}
	}
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
	rp, front := b.reaper, b.front
	b.srv, b.ln, b.order, b.devices, b.reaper, b.front = nil, nil, nil, nil, nil, nil
	if rp != nil {
		rp.halt()
	}
	if b.stop != nil {
		b.stop()
		b.stop = nil
	}
	b.mu.Unlock()
	err := srv.Close()
	if front != nil && front.poll != nil {
		front.stopSweepWait()
		front.poll.close()
	}
	if err != nil {
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
// PUBCOMP marks, so callers treat nil as "confirmed" (Deliver confirms
// at the device instead). A publish to a device's control topic first
// waits while that device has much queued (see Config.MaxPendingWrites).
// It returns ErrNotRunning when the broker is stopped.
func (b *Broker) Publish(topic string, payload []byte) error {
	b.mu.RLock()
	devices := b.devices
	b.mu.RUnlock()
	if devices == nil {
		return ErrNotRunning
	}
	unlock, err := devices.lockPublish(context.Background(), topic)
	if err != nil {
		return err
	}
	defer unlock()
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.devices != devices {
		return ErrNotRunning
	}
	defer b.order.publishGate()()
	if err := b.srv.Publish(topic, payload, false, 2); err != nil {
		return fmt.Errorf("broker: publish: %w", err)
	}
	return nil
}

// Online reports whether device id is connected and subscribed to its
// control topic (false when the broker is stopped).
func (b *Broker) Online(id [16]byte) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.devices != nil && b.devices.online(id)
}

// Deliver publishes payload with QoS 2 on the control topic of device id,
// to the device's current session only, and returns nil once that session
// completed the QoS 2 exchange for this message (PUBCOMP received from the
// device). It returns ErrOffline at once when the device is not online, or
// when its connection ends before the exchange completes; ErrNotRunning
// when the broker is stopped; ctx's error on timeout or cancellation.
//
// Unlike Publish, nil here means the device itself has the message, not
// that the broker took it. The message goes through the same per-client
// queue as Publish's (and a privileged subscriber of the control topic,
// such as a C2 monitor, sees it too), so what the C2 sends to one device
// keeps its order. No lock is held while waiting, and a call that times
// out leaves nothing behind; the message itself stays in the device's
// session, which may still complete it later (the device must treat a
// repeated command as it treats any replay).
func (b *Broker) Deliver(ctx context.Context, id [16]byte, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("broker: deliver to %x: %w", id, err)
	}
	b.mu.RLock()
	srv, devices := b.srv, b.devices
	b.mu.RUnlock()
	if srv == nil {
		return ErrNotRunning
	}
	w, err := devices.send(ctx, id, func(topic string) error {
		b.mu.RLock()
		defer b.mu.RUnlock()
		if b.devices != devices {
			return ErrNotRunning
		}
		defer b.order.publishGate()()
		if err := b.srv.Publish(topic, payload, false, 2); err != nil {
			return fmt.Errorf("broker: deliver to %x: %w", id, err)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrOffline) && !b.runningServer(srv) {
			return ErrNotRunning
		}
		return err
	}
	err = devices.wait(ctx, id, w)
	if errors.Is(err, ErrOffline) && !b.runningServer(srv) {
		return ErrNotRunning
	}
	return err
}

// runningServer reports whether srv is still the broker's server.
func (b *Broker) runningServer(srv *mqtt.Server) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.srv == srv
}
