package mqtt

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/e4c2/e4c2/internal/pahostore"
)

// PahoConfig configures a Paho publisher.
type PahoConfig struct {
	// BrokerURL is tcp://host:port or ssl://host:port (tls:// and mqtts://
	// are accepted as aliases of ssl://).
	BrokerURL string
	// ClientID identifies this C2 instance to the broker. Default: "e4c2-"
	// plus 8 random bytes in hex. Two instances must never share one (the
	// broker would disconnect one for the other); a stable per-instance id
	// lets the broker resume the persistent session after a restart.
	ClientID string
	// Username and Password, if set, authenticate the C2 (e.g. the
	// embedded broker's C2 credentials).
	Username, Password string
	// TLS configures ssl:// connections (nil: system roots).
	TLS *tls.Config
	// MaxInflight is the broker's tolerance for unconfirmed QoS 2
	// publishes from one client, returned by SafeWindow (default
	// DefaultWindowExternal, for mosquitto's max_inflight_messages 20;
	// use DefaultWindowEmbedded for mochi).
	MaxInflight int
	// ConnectTimeout (default 10s), KeepAlive (default 30s) and
	// MaxReconnectInterval (default 10s) tune the connection.
	ConnectTimeout, KeepAlive, MaxReconnectInterval time.Duration
}

// Paho publishes through an MQTT 3.1.1 connection (eclipse paho). The
// session is persistent (CleanSession false) and paho keeps unconfirmed
// QoS 2 publishes in its store, so a publish interrupted by a reconnect is
// completed on the new connection instead of lost. It reconnects by itself.
type Paho struct {
	c           paho.Client
	window      int
	id          string
	connects    atomic.Int64
	reconnected chan bool

	subMu   sync.Mutex
	subs    map[string]paho.MessageHandler // renewed at every connection
	onLost  []func()
	onAgain []func()
}

var _ Publisher = (*Paho)(nil)

// NewPaho validates cfg and starts connecting in the background; it does not
// wait for the broker (see WaitConnected). Until connected, Publish returns
// ErrUnavailable, which the Worker waits out.
func NewPaho(cfg PahoConfig) (*Paho, error) {
	u, err := url.Parse(cfg.BrokerURL)
	if err != nil {
		return nil, fmt.Errorf("mqtt: broker url: %w", err)
	}
	switch u.Scheme {
	case "tcp":
	case "ssl", "tls", "mqtts":
		u.Scheme = "ssl"
	default:
		return nil, fmt.Errorf("mqtt: broker url: scheme %q: want tcp or ssl", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("mqtt: broker url: no host")
	}
	if cfg.ClientID == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("mqtt: client id: %w", err)
		}
		cfg.ClientID = "e4c2-" + hex.EncodeToString(b[:])
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = DefaultWindowExternal
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 30 * time.Second
	}
	if cfg.MaxReconnectInterval <= 0 {
		cfg.MaxReconnectInterval = 10 * time.Second
	}
	o := paho.NewClientOptions().
		AddBroker(u.Scheme + "://" + u.Host).
		SetClientID(cfg.ClientID).
		SetProtocolVersion(4).
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(250 * time.Millisecond).
		SetMaxReconnectInterval(cfg.MaxReconnectInterval).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetKeepAlive(cfg.KeepAlive).
		SetOrderMatters(false).
		SetStore(pahostore.New())
	p := &Paho{window: cfg.MaxInflight, id: cfg.ClientID, reconnected: make(chan bool, 1)}
	o.SetOnConnectHandler(func(c paho.Client) {
		p.subMu.Lock()
		for f, h := range p.subs {
			c.Subscribe(f, 1, h)
		}
		again := p.onAgain
		p.subMu.Unlock()
		if p.connects.Add(1) > 1 {
			for _, f := range again {
				f()
			}
			select {
			case p.reconnected <- false:
			default:
			}
		}
	})
	o.SetConnectionLostHandler(func(paho.Client, error) {
		p.subMu.Lock()
		lost := p.onLost
		p.subMu.Unlock()
		for _, f := range lost {
			f()
		}
	})
	if cfg.Username != "" {
		o.SetUsername(cfg.Username).SetPassword(cfg.Password)
	}
	if u.Scheme == "ssl" {
		tc := cfg.TLS
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		o.SetTLSConfig(tc)
	}
	p.c = paho.NewClient(o)
	// With ConnectRetry the token completes only once connected (or on
	// Disconnect); the worker does not wait for it.
	p.c.Connect()
	return p, nil
}

// Subscribe subscribes to filter with QoS 1 now (if connected) and after
// every reconnection, handing each message to handler (called from paho's
// goroutine: it must not block).
func (p *Paho) Subscribe(filter string, handler func(topic string, payload []byte)) {
	h := func(_ paho.Client, m paho.Message) { handler(m.Topic(), m.Payload()) }
	p.subMu.Lock()
	if p.subs == nil {
		p.subs = map[string]paho.MessageHandler{}
	}
	p.subs[filter] = h
	p.subMu.Unlock()
	if p.c.IsConnectionOpen() {
		p.c.Subscribe(filter, 1, h)
	}
}

// OnConnectionChange registers functions called (from paho's goroutines)
// when the connection is lost and when it is back after a loss.
func (p *Paho) OnConnectionChange(lost, back func()) {
	p.subMu.Lock()
	defer p.subMu.Unlock()
	if lost != nil {
		p.onLost = append(p.onLost, lost)
	}
	if back != nil {
		p.onAgain = append(p.onAgain, back)
	}
}

// Reconnected receives a value each time the connection came back after it
// was lost (not for the first connection). The value is whether the broker
// kept the session; paho does not report it on automatic reconnections, so
// it is false: callers must assume the broker may have lost what it held.
func (p *Paho) Reconnected() <-chan bool { return p.reconnected }

// ClientID returns the MQTT client id in use.
func (p *Paho) ClientID() string { return p.id }

// WaitConnected waits until the connection is up or ctx is done.
func (p *Paho) WaitConnected(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !p.c.IsConnectionOpen() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("mqtt: connect: %w", ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// Publish implements Publisher. paho's token completes on PUBCOMP; if the
// connection drops first, paho resends on reconnect and the token completes
// then, so the wait is bounded by ctx (the worker's attempt timeout), not by
// the connection. A publish is only started on an open connection: handing
// paho a message while it reconnects would have it sent, with a stale
// timestamp, whenever the broker returns.
func (p *Paho) Publish(ctx context.Context, topic string, payload []byte) error {
	if !p.c.IsConnectionOpen() {
		return fmt.Errorf("mqtt: publish: %w", ErrUnavailable)
	}
	tok := p.c.Publish(topic, 2, false, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			if errors.Is(err, paho.ErrNotConnected) {
				return fmt.Errorf("mqtt: publish: %w (%w)", ErrUnavailable, err)
			}
			return fmt.Errorf("mqtt: publish: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mqtt: publish not confirmed: %w", ctx.Err())
	}
}

// Connected implements Publisher.
func (p *Paho) Connected() bool { return p.c.IsConnectionOpen() }

// SafeWindow implements Publisher.
func (p *Paho) SafeWindow() int { return p.window }

// Close disconnects, giving in-flight exchanges up to 250ms.
func (p *Paho) Close() error {
	p.c.Disconnect(250)
	return nil
}
