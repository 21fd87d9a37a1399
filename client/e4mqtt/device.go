package e4mqtt

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/client/ack"
	"github.com/e4c2/e4c2/internal/pahostore"
)

// Message is what the device received on a topic.
type Message struct {
	Topic   string
	Payload []byte // plaintext of an application message (nil for a command)
	Command bool   // a C2 command that was applied to the device state
	Err     error  // set when the message could not be opened or applied
}

// Config configures a device connection.
type Config struct {
	// BrokerURL is tcp://host:port or ssl://host:port.
	BrokerURL string
	// ClientID defaults to "e4dev-" + hex(device id), the only client id
	// the C2's embedded broker accepts for this device.
	ClientID string
	// Username and Password authenticate to the broker. When Username is
	// empty the device presents its E4 device credential (package
	// client/credential), computed afresh at every connection, which is
	// what the C2's embedded broker requires; set them for an external
	// broker with its own accounts.
	Username, Password string
	// Anonymous sends no credential at all.
	Anonymous bool
	// Acks turns on the device acknowledgement extension (package
	// client/ack): a hello after every connection, an ack after every
	// applied command, and an "offline" will. With an external broker it is
	// what lets the C2 confirm what the device holds; off by default.
	Acks bool
	// TLS configures ssl:// connections.
	TLS *tls.Config
	// CleanSession drops the broker session at connect. Default false: a
	// persistent session keeps commands sent while the device was away.
	CleanSession bool
	// PublishQoS is the QoS of application publishes (default 1).
	PublishQoS byte
	// OnMessage receives every message, commands included, in arrival
	// order (paho delivers in order). It must not block for long.
	OnMessage func(Message)
	// ConnectTimeout bounds the first connection (default 10 s).
	ConnectTimeout time.Duration
}

// Device is an E4 device connected to a broker.
type Device struct {
	c   *client.Client
	cfg Config
	mq  paho.Client

	mu      sync.Mutex
	topics  map[string]byte
	refused map[string]bool // application topics the broker refused: retried after each command

	handling sync.WaitGroup // messages being handled (their acks not yet queued)

	qosMu    sync.Mutex
	qosOpen  map[uint16]bool // QoS 2 messages handled whose PUBCOMP is not written yet
	qosEmpty *sync.Cond
}

// ErrTimeout is returned when the broker did not answer in time.
var ErrTimeout = errors.New("e4mqtt: broker did not answer in time")

// Connect connects c to the broker and subscribes to its control topic with
// QoS 2 before returning, so that no command published afterwards is missed.
func Connect(ctx context.Context, c *client.Client, cfg Config) (*Device, error) {
	if cfg.BrokerURL == "" {
		return nil, errors.New("e4mqtt: no broker url")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "e4dev-" + hex.EncodeToString(c.ID())
	}
	if cfg.PublishQoS == 0 {
		cfg.PublishQoS = 1
	}
	if cfg.PublishQoS > 2 {
		return nil, fmt.Errorf("e4mqtt: invalid qos %d", cfg.PublishQoS)
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	d := &Device{c: c, cfg: cfg, topics: map[string]byte{c.ControlTopic(): 2}, refused: map[string]bool{}, qosOpen: map[uint16]bool{}}
	d.qosEmpty = sync.NewCond(&d.qosMu)
	opts := paho.NewClientOptions().
		AddBroker(cfg.BrokerURL).
		SetClientID(cfg.ClientID).
		SetCleanSession(cfg.CleanSession).
		SetOrderMatters(true).
		SetStore(pahostore.New()).
		SetAutoReconnect(true).
		SetConnectRetry(false).
		SetMaxReconnectInterval(5 * time.Second).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetKeepAlive(30 * time.Second).
		SetDefaultPublishHandler(d.handle).
		SetCustomOpenConnectionFn(d.dial).
		SetAutoAckDisabled(true).
		SetOnConnectHandler(d.resubscribe)
	switch {
	case cfg.Anonymous:
	case cfg.Username != "":
		opts.SetUsername(cfg.Username).SetPassword(cfg.Password)
	default:
		if _, _, err := c.MQTTCredential(); err != nil {
			return nil, fmt.Errorf("e4mqtt: %w", err)
		}
		// A provider, not a fixed password: a PK credential expires, and
		// an SK one changes with SetIdKey; every reconnection presents
		// the current one.
		opts.SetCredentialsProvider(func() (string, string) {
			u, p, err := c.MQTTCredential()
			if err != nil {
				return "", ""
			}
			return u, p
		})
	}
	if cfg.TLS != nil {
		opts.SetTLSConfig(cfg.TLS)
	}
	if cfg.Acks {
		opts.SetBinaryWill(ack.Topic(c.ID()), []byte(ack.OfflineBody), 1, false)
	}
	d.mq = paho.NewClient(opts)
	if err := wait(ctx, d.mq.Connect(), cfg.ConnectTimeout); err != nil {
		return nil, fmt.Errorf("e4mqtt: connect %s: %w", cfg.BrokerURL, err)
	}
	var tok paho.Token
	for attempt := 0; ; attempt++ {
		tok = d.mq.Subscribe(c.ControlTopic(), 2, d.handle)
		if err := wait(ctx, tok, cfg.ConnectTimeout); err != nil {
			d.mq.Disconnect(0)
			return nil, fmt.Errorf("e4mqtt: subscribe to the control topic: %w", err)
		}
		if !idInUse(tok) || attempt == 3 {
			break
		}
	}
	if refusedTopics(tok) != nil {
		d.mq.Disconnect(0)
		return nil, fmt.Errorf("e4mqtt: the broker refused the subscription to the control topic %s", c.ControlTopic())
	}
	d.hello()
	return d, nil
}

// Client returns the device library client.
func (d *Device) Client() *client.Client { return d.c }

// Subscribe subscribes to application topics (QoS 1) and waits for the
// broker's acknowledgement.
func (d *Device) Subscribe(ctx context.Context, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	filters := make(map[string]byte, len(topics))
	d.mu.Lock()
	for _, t := range topics {
		filters[t] = 1
		d.topics[t] = 1
	}
	d.mu.Unlock()
	tok := d.mq.SubscribeMultiple(filters, d.handle)
	if err := wait(ctx, tok, d.cfg.ConnectTimeout); err != nil {
		return fmt.Errorf("e4mqtt: subscribe: %w", err)
	}
	d.noteRefused(refusedTopics(tok), filters)
	return nil
}

// Refused returns the application topics the broker refused to subscribe
// this device to (the C2's broker only allows the topics a device is
// attached to). The device asks again after every command it applies, so
// a topic it is attached to later is subscribed to then.
func (d *Device) Refused() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.refused))
	for t := range d.refused {
		out = append(out, t)
	}
	return out
}

func (d *Device) noteRefused(refused map[string]bool, asked map[string]byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for t := range asked {
		if refused[t] {
			d.refused[t] = true
		} else {
			delete(d.refused, t)
		}
	}
}

// codePacketIDInUse is the SUBACK code some brokers (mochi) answer when the
// SUBSCRIBE's packet id equals the id of a message the broker is itself
// sending the client (a resumed session): the ids of the two directions are
// independent in MQTT, so the subscription is simply asked again, with the
// next id.
const codePacketIDInUse = 0x91

func idInUse(tok paho.Token) bool {
	st, ok := tok.(*paho.SubscribeToken)
	if !ok {
		return false
	}
	for _, code := range st.Result() {
		if code == codePacketIDInUse {
			return true
		}
	}
	return false
}

// refusedTopics returns the filters a SUBACK refused (return code 0x80).
func refusedTopics(tok paho.Token) map[string]bool {
	st, ok := tok.(*paho.SubscribeToken)
	if !ok {
		return nil
	}
	var out map[string]bool
	for t, code := range st.Result() {
		if code >= 0x80 {
			if out == nil {
				out = map[string]bool{}
			}
			out[t] = true
		}
	}
	return out
}

// retryRefused subscribes again to the refused topics (after a command: the
// device may have just been attached to one).
func (d *Device) retryRefused() {
	d.mu.Lock()
	if len(d.refused) == 0 {
		d.mu.Unlock()
		return
	}
	filters := make(map[string]byte, len(d.refused))
	for t := range d.refused {
		filters[t] = d.topics[t]
	}
	d.mu.Unlock()
	tok := d.mq.SubscribeMultiple(filters, d.handle)
	go func() {
		if wait(context.Background(), tok, d.cfg.ConnectTimeout) == nil {
			d.noteRefused(refusedTopics(tok), filters)
		}
	}()
}

// Publish protects payload with the topic key and publishes it.
func (d *Device) Publish(ctx context.Context, topic string, payload []byte) error {
	protected, err := d.c.ProtectMessage(payload, topic)
	if err != nil {
		return fmt.Errorf("e4mqtt: protect: %w", err)
	}
	if err := wait(ctx, d.mq.Publish(topic, d.cfg.PublishQoS, false, protected), d.cfg.ConnectTimeout); err != nil {
		return fmt.Errorf("e4mqtt: publish: %w", err)
	}
	return nil
}

// Close disconnects cleanly: it finishes the QoS exchanges of what it
// received (so the C2 sees the last command confirmed, not abandoned),
// then waits up to 250 ms for outgoing work. With acks it first says
// "offline" (a clean disconnection sends no will).
func (d *Device) Close() {
	d.handling.Wait()
	if d.mq.IsConnectionOpen() {
		d.waitQoSComplete(2 * time.Second)
	}
	if d.cfg.Acks {
		d.mq.Publish(ack.Topic(d.c.ID()), 1, false, []byte(ack.OfflineBody)).WaitTimeout(time.Second)
	}
	d.mq.Disconnect(250)
}

func (d *Device) handle(_ paho.Client, m paho.Message) {
	// Acknowledged (PUBACK / PUBREC) only once handled: a command counts
	// as taken by the device's session only after the device applied
	// it, and Close waits for these acknowledgements to be queued.
	d.handling.Add(1)
	defer d.handling.Done()
	if m.Qos() == 2 {
		d.qosMu.Lock()
		d.qosOpen[m.MessageID()] = true
		d.qosMu.Unlock()
	}
	defer m.Ack()
	payload, isCmd, err := d.c.Unprotect(m.Payload(), m.Topic())
	if isCmd && err == nil {
		d.retryRefused()
		d.ack(ack.AppliedBody(m.Payload()))
	}
	if d.cfg.OnMessage != nil {
		d.cfg.OnMessage(Message{Topic: m.Topic(), Payload: payload, Command: isCmd, Err: err})
	}
}

// resubscribe restores the subscriptions after a reconnect when the session
// was not kept (clean session, or a broker that lost it).
func (d *Device) resubscribe(c paho.Client) {
	d.mu.Lock()
	filters := make(map[string]byte, len(d.topics))
	for t, q := range d.topics {
		filters[t] = q
	}
	d.mu.Unlock()
	tok := c.SubscribeMultiple(filters, d.handle)
	if d.cfg.Acks && d.mq != nil {
		// Say hello once the control topic is subscribed again, so that
		// what the C2 sends on hearing it arrives.
		go func() {
			if wait(context.Background(), tok, d.cfg.ConnectTimeout) == nil {
				d.hello()
			}
		}()
	}
}

// hello announces the device (acks extension).
func (d *Device) hello() { d.ack(ack.HelloBody) }

// ack publishes an acknowledgement body, protected, without waiting: an ack
// lost on the way only makes the C2 send the command again.
func (d *Device) ack(body string) {
	if !d.cfg.Acks {
		return
	}
	p, err := d.c.SealAck(body)
	if err != nil {
		return
	}
	d.mq.Publish(ack.Topic(d.c.ID()), 1, false, p)
}

func wait(ctx context.Context, tok paho.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return ErrTimeout
	}
}

// dial opens the broker connection (tcp:// or ssl://, as paho would) and
// wraps it to see the PUBCOMPs paho writes.
func (d *Device) dial(u *url.URL, o paho.ClientOptions) (net.Conn, error) {
	dialer := &net.Dialer{Timeout: o.ConnectTimeout}
	var (
		conn net.Conn
		err  error
	)
	switch u.Scheme {
	case "tcp", "mqtt":
		conn, err = dialer.Dial("tcp", u.Host)
	case "ssl", "tls", "mqtts", "tcps":
		tc := o.TLSConfig
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		conn, err = tls.DialWithDialer(dialer, "tcp", u.Host, tc)
	default:
		return nil, fmt.Errorf("e4mqtt: broker url scheme %q: want tcp or ssl", u.Scheme)
	}
	if err != nil {
		return nil, err
	}
	return &pubcompConn{Conn: conn, d: d}, nil
}

// pubcompConn tells the device when a PUBCOMP went out: paho writes a
// PUBCOMP and a DISCONNECT from two different queues, so a DISCONNECT right
// after the last command could overtake its PUBCOMP, and the C2 would see
// the exchange abandoned. Close waits for these writes instead.
type pubcompConn struct {
	net.Conn
	d *Device
}

func (c *pubcompConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	// paho writes each packet in one call; a PUBCOMP is 0x70 0x02 id.
	if err == nil && len(b) == 4 && b[0] == 0x70 && b[1] == 0x02 {
		c.d.qosDone(uint16(b[2])<<8 | uint16(b[3]))
	}
	return n, err
}

func (d *Device) qosDone(id uint16) {
	d.qosMu.Lock()
	delete(d.qosOpen, id)
	if len(d.qosOpen) == 0 {
		d.qosEmpty.Broadcast()
	}
	d.qosMu.Unlock()
}

// waitQoSComplete waits until every QoS 2 message handled has its PUBCOMP
// written, or for at most max.
func (d *Device) waitQoSComplete(max time.Duration) {
	t := time.AfterFunc(max, func() {
		d.qosMu.Lock()
		clear(d.qosOpen)
		d.qosEmpty.Broadcast()
		d.qosMu.Unlock()
	})
	defer t.Stop()
	d.qosMu.Lock()
	for len(d.qosOpen) > 0 {
		d.qosEmpty.Wait()
	}
	d.qosMu.Unlock()
}
