package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// ErrOffline is returned by Deliver when the device is not online (not
// connected, or connected but not subscribed to its control topic), or when
// its connection ended before it completed the QoS 2 exchange.
// It reports DeviceOffline() true (see ErrNotRunning).
var ErrOffline error = stateError{msg: "broker: device offline", offline: true}

// Errors of a Deliver that reached the device's session but cannot be
// confirmed. They are not sentinels: the C2 treats them like ErrOffline
// (not delivered, try again later) and logs them.
var (
	errQueueFull  = errors.New("device's write queue is full (message dropped)")
	errLowQoS     = errors.New("device subscribed to its control topic below QoS 2")
	errDropped    = errors.New("device refused the message or the broker dropped it")
	errOutOfOrder = errors.New("device sent PUBCOMP without PUBREC")
)

// Observer hears when devices come and go. Calls must not block for long
// (the broker calls them from its connection goroutines).
type Observer interface {
	// DeviceOnline: an authenticated device is subscribed to its control
	// topic (a publish to it now reaches its session). sessionPresent is
	// what the broker answered in CONNACK.
	DeviceOnline(id [16]byte, sessionPresent bool)
	// DeviceOffline: the device's connection ended (or was taken over by a
	// newer one: then DeviceOnline follows for the new connection; never
	// report offline for a connection that was replaced after the new one
	// came online).
	DeviceOffline(id [16]byte)
}

// deviceShards spreads the device table over several locks so that 10,000
// devices connecting and 256 Deliver calls do not contend on one mutex.
const deviceShards = 64

// deviceHook tracks which connection of each device is online and which
// QoS 2 messages to it a Deliver call waits for.
//
// Correlation: Deliver publishes through mochi (so that the message takes
// the same per-client queue as everything else the C2 publishes, and keeps
// its FIFO order) while it holds the device's pub lock and has marked the
// publish as pending; mochi calls OnQosPublish synchronously, inside that
// publish, with the outgoing packet and the packet id it chose for the
// device's client. From then on the waiter is keyed by (client, packet
// id): the client's PUBREC (OnPacketProcessed) and then PUBCOMP
// (OnQosComplete) confirm it; the end of that client's connection
// (OnDisconnect), or mochi dropping the message (OnQosDropped,
// OnPublishDropped) fails it. A newer connection of the same device does
// not complete a waiter of the old one: Deliver promises the exchange on
// the session that was current when it was called.
type deviceHook struct {
	mqtt.HookBase
	auth   *authHook
	obs    Observer
	room   int // publishes to a device wait while it has this many queued
	shards [deviceShards]deviceShard
}

type deviceShard struct {
	mu sync.RWMutex
	m  map[[16]byte]*device
}

// device is the state of one device id. It lives in its shard while it has
// a connection, a waiter or a user (refs); fields marked "shard" are
// guarded by the shard's mutex.
type device struct {
	id [16]byte
	// obs is held across a state change and the Observer call that
	// reports it, so that the calls for one device arrive in order.
	obs sync.Mutex
	// pub serialises in-process publishes to the device's control topic,
	// so that OnQosPublish can attribute the packet id to the right call.
	pub sync.Mutex

	refs    int                       // shard
	conns   []devConn                 // shard: connections past CONNACK
	cur     *mqtt.Client              // shard: the connection that is online
	pending *delivery                 // shard: the Deliver publishing now
	queued  int                       // shard: QoS 1/2 publishes queued for cur, not yet written
	drained chan struct{}             // shard: closed when queued falls below room (or cur changes)
	waits   map[deliveryKey]*delivery // shard; nil when empty
}

// devConn is a connection of a device and what its CONNACK said about the
// session. A device has one, two during a take-over: a slice costs a
// fraction of a map on each of 10,000 devices.
type devConn struct {
	cl      *mqtt.Client
	present bool
}

// conn returns what CONNACK told cl about its session, and whether cl is
// one of the device's connections. The shard lock is held.
func (d *device) conn(cl *mqtt.Client) (present, ok bool) {
	for _, c := range d.conns {
		if c.cl == cl {
			return c.present, true
		}
	}
	return false, false
}

// addConn records cl's CONNACK. The shard lock is held.
func (d *device) addConn(cl *mqtt.Client, present bool) {
	for i := range d.conns {
		if d.conns[i].cl == cl {
			d.conns[i].present = present
			return
		}
	}
	d.conns = append(d.conns, devConn{cl, present})
}

// dropConns forgets the connections for which gone is true. The shard
// lock is held.
func (d *device) dropConns(gone func(*mqtt.Client) bool) {
	kept := d.conns[:0]
	for _, c := range d.conns {
		if !gone(c.cl) {
			kept = append(kept, c)
		}
	}
	clear(d.conns[len(kept):]) // no dangling client for the GC to keep
	d.conns = kept
	if len(d.conns) == 0 {
		d.conns = nil
	}
}

// unwait forgets the waiter under k. The map goes when it is empty: it
// would otherwise stay, at a few hundred bytes, on every device the C2
// ever sent a command to. The shard lock is held.
func (d *device) unwait(k deliveryKey) {
	delete(d.waits, k)
	if len(d.waits) == 0 {
		d.waits = nil
	}
}

type deliveryKey struct {
	cl  *mqtt.Client
	pid uint16
}

// delivery is one Deliver call waiting for its PUBCOMP.
type delivery struct {
	cl         *mqtt.Client
	key        deliveryKey
	registered bool // packet id known, in waits
	dropped    bool // mochi dropped it before writing
	received   bool // PUBREC seen
	done       chan error
}

func (h *deviceHook) ID() string { return "e4-devices" }

func (h *deviceHook) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnPacketSent, mqtt.OnSessionEstablished, mqtt.OnSubscribed, mqtt.OnUnsubscribed,
		mqtt.OnDisconnect, mqtt.OnQosPublish, mqtt.OnQosComplete, mqtt.OnQosDropped,
		mqtt.OnPublishDropped, mqtt.OnPacketProcessed,
	}, []byte{b})
}

func (h *deviceHook) shard(id [16]byte) *deviceShard {
	return &h.shards[id[0]%deviceShards]
}

// acquire returns the device's state, creating it, with a reference the
// caller must release.
func (h *deviceHook) acquire(id [16]byte) (*deviceShard, *device) {
	s := h.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[[16]byte]*device)
	}
	d := s.m[id]
	if d == nil {
		d = &device{id: id}
		s.m[id] = d
	}
	d.refs++
	return s, d
}

// release drops a reference and forgets a device that has nothing left:
// the table holds only devices with a connection or a waiter.
func (h *deviceHook) release(s *deviceShard, d *device) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d.refs--
	if d.refs == 0 && len(d.conns) == 0 && d.cur == nil && len(d.waits) == 0 && d.pending == nil {
		delete(s.m, d.id)
	}
}

// deviceID returns the id of a device client, false for any other client.
func (h *deviceHook) deviceID(cl *mqtt.Client) ([16]byte, bool) {
	r, id := h.auth.classify(cl)
	return id, r == roleDevice
}

// event runs change under the shard lock, then the Observer call it
// returns (if any) outside the shard lock but under the device's obs lock.
func (h *deviceHook) event(id [16]byte, change func(d *device) func(Observer)) {
	s, d := h.acquire(id)
	defer h.release(s, d)
	d.obs.Lock()
	defer d.obs.Unlock()
	s.mu.Lock()
	call := change(d)
	s.mu.Unlock()
	if call != nil && h.obs != nil {
		call(h.obs)
	}
}

// goOnline makes cl the device's online connection, unless it already is.
func (h *deviceHook) goOnline(cl *mqtt.Client, id [16]byte) {
	h.event(id, func(d *device) func(Observer) {
		if d.cur == cl || cl.Closed() {
			return nil
		}
		present, ok := d.conn(cl)
		if !ok {
			return nil // its OnDisconnect already ran
		}
		d.cur = cl
		d.queued = 0
		d.wake()
		return func(o Observer) { o.DeviceOnline(id, present) }
	})
}

// goOffline reports the device offline if cl is its online connection.
func (h *deviceHook) goOffline(cl *mqtt.Client, id [16]byte, disconnected bool) {
	h.event(id, func(d *device) func(Observer) {
		if disconnected {
			d.dropConns(func(c *mqtt.Client) bool { return c == cl })
			for k, w := range d.waits {
				if k.cl == cl {
					d.unwait(k)
					w.done <- ErrOffline
				}
			}
		}
		if d.cur != cl {
			return nil
		}
		d.cur = nil
		d.queued = 0
		d.wake()
		return func(o Observer) { o.DeviceOffline(id) }
	})
}

// OnPacketSent records what CONNACK told a device about its session, and
// counts the publishes written to it.
func (h *deviceHook) OnPacketSent(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type == packets.Publish && pk.FixedHeader.Qos > 0 {
		h.written(cl)
		return
	}
	if pk.FixedHeader.Type != packets.Connack || pk.ReasonCode != packets.CodeSuccess.Code {
		return
	}
	id, ok := h.deviceID(cl)
	if !ok {
		return
	}
	s, d := h.acquire(id)
	s.mu.Lock()
	d.addConn(cl, pk.SessionPresent)
	s.mu.Unlock()
	h.release(s, d)
}

// OnSessionEstablished reports a device whose resumed session already holds
// the subscription to its control topic.
func (h *deviceHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	id, ok := h.deviceID(cl)
	if !ok {
		return
	}
	if _, ok := cl.State.Subscriptions.Get(ControlTopic(id)); ok {
		h.goOnline(cl, id)
	}
}

// OnSubscribed reports a device that subscribed to its control topic.
func (h *deviceHook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	id, ok := h.deviceID(cl)
	if !ok {
		return
	}
	topic := ControlTopic(id)
	for i, f := range pk.Filters {
		if f.Filter == topic && i < len(codes) && codes[i] <= packets.CodeGrantedQos2.Code {
			h.goOnline(cl, id)
			return
		}
	}
}

// OnUnsubscribed reports a device that left its control topic (also when
// mochi drops a clean session's subscriptions, or a taken-over one's).
func (h *deviceHook) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	id, ok := h.deviceID(cl)
	if !ok {
		return
	}
	topic := ControlTopic(id)
	for _, f := range pk.Filters {
		if f.Filter == topic {
			h.goOffline(cl, id, false)
			return
		}
	}
}

// OnDisconnect reports the device offline and fails the waiters of this
// connection.
func (h *deviceHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	id, ok := h.deviceID(cl)
	if !ok {
		return
	}
	s := h.shard(id)
	s.mu.RLock()
	_, known := s.m[id]
	s.mu.RUnlock()
	if !known {
		return // e.g. a session reloaded from the persistence file
	}
	h.goOffline(cl, id, true)
}

// OnQosPublish counts what is queued for a device's connection and learns
// the packet id of a pending Deliver.
func (h *deviceHook) OnQosPublish(cl *mqtt.Client, pk packets.Packet, _ int64, _ int) {
	if pk.FixedHeader.Type != packets.Publish || pk.FixedHeader.Qos == 0 {
		return
	}
	id, ok := h.deviceID(cl)
	if !ok {
		return
	}
	s := h.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.m[id]
	if d == nil || d.cur != cl {
		return
	}
	if !isFront(cl) {
		// A front-end session writes at once: nothing waits in a queue.
		d.queued++
	}
	w := d.pending
	if w == nil || w.cl != cl || w.registered || pk.FixedHeader.Qos != 2 || pk.TopicName != ControlTopic(id) {
		return
	}
	w.key = deliveryKey{cl, pk.PacketID}
	w.registered = true
	if d.waits == nil {
		d.waits = make(map[deliveryKey]*delivery)
	}
	if old := d.waits[w.key]; old != nil {
		old.done <- errDropped // id reused: the old message is gone
	}
	d.waits[w.key] = w
}

// written notes that a QoS 1/2 publish left (or will never leave) the
// queue of a device's connection.
func (h *deviceHook) written(cl *mqtt.Client) {
	id, ok := h.deviceID(cl)
	if !ok {
		return
	}
	s := h.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.m[id]
	if d == nil || d.cur != cl || d.queued == 0 {
		return
	}
	d.queued--
	if d.queued < h.room {
		d.wake()
	}
}

// wake releases the publishes waiting for room. The shard lock is held.
func (d *device) wake() {
	if d.drained != nil {
		close(d.drained)
		d.drained = nil
	}
}

// roomWait bounds one wait in awaitRoom without progress. The count is
// kept from mochi's hooks, and a write that fails (e.g. a packet above an
// MQTT 5 client's maximum size) ends without the hook that would lower it:
// after roomWait without a single write the count is presumed stale,
// reset, and the publish goes ahead (as it would without the wait).
var roomWait = 10 * time.Second

// awaitRoom waits until the device's online connection has fewer than
// h.room publishes queued (or it is offline). mochi drops, for good, a
// message that finds a client's write queue full, and an in-process
// publisher can fill it far faster than a device reads; waiting here keeps
// the queue small (it costs memory on every connection) without losing
// messages. A device that stops reading is disconnected by its keepalive,
// which ends the wait. The caller holds d.pub.
func (h *deviceHook) awaitRoom(ctx context.Context, s *deviceShard, d *device) error {
	for {
		s.mu.Lock()
		if d.cur == nil || d.queued < h.room {
			s.mu.Unlock()
			return nil
		}
		if d.drained == nil {
			d.drained = make(chan struct{})
		}
		ch := d.drained
		s.mu.Unlock()
		t := time.NewTimer(roomWait)
		select {
		case <-ch:
			t.Stop()
		case <-t.C:
			s.mu.Lock()
			if d.drained == ch {
				d.queued = 0
			}
			s.mu.Unlock()
			return nil
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("broker: waiting for device %x to read: %w", d.id, ctx.Err())
		}
	}
}

// OnPublishDropped: mochi's write queue for the client was full; it rolled
// the message back.
func (h *deviceHook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) {
	if pk.FixedHeader.Qos > 0 {
		h.written(cl)
	}
	id, ok := h.deviceID(cl)
	if !ok || pk.TopicName != ControlTopic(id) {
		return
	}
	s := h.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.m[id]
	if d == nil || d.pending == nil || d.pending.cl != cl {
		return
	}
	d.pending.dropped = true
	if d.pending.registered {
		d.unwait(d.pending.key)
		d.pending.registered = false
	}
}

// OnPacketProcessed notes the PUBREC of a waited-for message.
func (h *deviceHook) OnPacketProcessed(cl *mqtt.Client, pk packets.Packet, err error) {
	if err != nil || pk.FixedHeader.Type != packets.Pubrec {
		return
	}
	h.withWaiter(cl, pk.PacketID, func(d *device, w *delivery) {
		if rel, ok := cl.State.Inflight.Get(pk.PacketID); ok && rel.FixedHeader.Type == packets.Pubrel {
			w.received = true
		}
	})
}

// OnQosComplete confirms a waited-for message on its PUBCOMP.
func (h *deviceHook) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	if pk.FixedHeader.Type != packets.Pubcomp {
		return
	}
	h.withWaiter(cl, pk.PacketID, func(d *device, w *delivery) {
		d.unwait(w.key)
		switch {
		case !w.received:
			w.done <- errOutOfOrder
		case pk.ReasonCode >= packets.ErrUnspecifiedError.Code:
			w.done <- errDropped
		default:
			w.done <- nil
		}
	})
}

// OnQosDropped fails a waited-for message that mochi gave up on.
func (h *deviceHook) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	h.withWaiter(cl, pk.PacketID, func(d *device, w *delivery) {
		d.unwait(w.key)
		w.done <- errDropped
	})
}

func (h *deviceHook) withWaiter(cl *mqtt.Client, pid uint16, f func(*device, *delivery)) {
	id, ok := h.deviceID(cl)
	if !ok {
		return
	}
	s := h.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.m[id]
	if d == nil {
		return
	}
	if w := d.waits[deliveryKey{cl, pid}]; w != nil {
		f(d, w)
	}
}

// online reports whether the device has an online connection.
func (h *deviceHook) online(id [16]byte) bool {
	s := h.shard(id)
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.m[id]
	return d != nil && d.cur != nil
}

// send publishes payload to the device's control topic through publish
// and returns the registered waiter. publish takes the broker's read lock
// itself: lock order is d.pub, then the broker's lock, then the gate.
func (h *deviceHook) send(ctx context.Context, id [16]byte, publish func(topic string) error) (*delivery, error) {
	s, d := h.acquire(id)
	defer h.release(s, d)
	d.pub.Lock()
	defer d.pub.Unlock()
	topic := ControlTopic(id)
	if err := h.awaitRoom(ctx, s, d); err != nil {
		return nil, err
	}

	s.mu.Lock()
	cl := d.cur
	if cl == nil {
		s.mu.Unlock()
		return nil, ErrOffline
	}
	if sub, ok := cl.State.Subscriptions.Get(topic); !ok {
		s.mu.Unlock()
		return nil, ErrOffline
	} else if sub.Qos < 2 {
		s.mu.Unlock()
		return nil, fmt.Errorf("broker: deliver to %x: %w", id, errLowQoS)
	}
	w := &delivery{cl: cl, done: make(chan error, 1)}
	d.pending = w
	s.mu.Unlock()

	err := publish(topic)

	s.mu.Lock()
	defer s.mu.Unlock()
	d.pending = nil
	switch {
	case err != nil:
		if w.registered {
			d.unwait(w.key)
		}
		return nil, err
	case w.dropped:
		return nil, fmt.Errorf("broker: deliver to %x: %w", id, errQueueFull)
	case !w.registered:
		// mochi did not queue it for that connection: it went away
		// (or lost its subscription) meanwhile.
		return nil, ErrOffline
	}
	return w, nil
}

// wait waits for w's outcome, or forgets w when ctx ends first.
func (h *deviceHook) wait(ctx context.Context, id [16]byte, w *delivery) error {
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
	}
	s := h.shard(id)
	s.mu.Lock()
	if d := s.m[id]; d != nil && d.waits[w.key] == w {
		d.unwait(w.key)
		if d.refs == 0 && len(d.conns) == 0 && d.cur == nil && len(d.waits) == 0 && d.pending == nil {
			delete(s.m, id)
		}
	}
	s.mu.Unlock()
	select {
	case err := <-w.done: // the outcome raced the cancellation
		return err
	default:
		return fmt.Errorf("broker: deliver to %x: %w", id, ctx.Err())
	}
}

// lockPublish serialises a plain in-process publish on a device's control
// topic with Deliver's correlation and waits for room in the device's
// queue (see awaitRoom); it returns the unlock function.
func (h *deviceHook) lockPublish(ctx context.Context, topic string) (func(), error) {
	id, ok := parseControlTopic(topic)
	if !ok {
		return func() {}, nil
	}
	s, d := h.acquire(id)
	d.pub.Lock()
	unlock := func() {
		d.pub.Unlock()
		h.release(s, d)
	}
	if err := h.awaitRoom(ctx, s, d); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// size returns the number of devices in the table (for leak tests).
func (h *deviceHook) size() int {
	n := 0
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// sweep forgets connections that ended without OnDisconnect: mochi returns
// without it when resending a resumed session fails right after CONNACK.
func (h *deviceHook) sweep() {
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		for id, d := range s.m {
			d.dropConns(func(cl *mqtt.Client) bool { return cl != d.cur && cl.Closed() })
			if d.refs == 0 && len(d.conns) == 0 && d.cur == nil && len(d.waits) == 0 && d.pending == nil {
				delete(s.m, id)
			}
		}
		s.mu.Unlock()
	}
}

// waiters returns the number of Deliver calls waiting (for leak tests).
func (h *deviceHook) waiters() int {
	n := 0
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		for _, d := range s.m {
			n += len(d.waits)
		}
		s.mu.RUnlock()
	}
	return n
}
