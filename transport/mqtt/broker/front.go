package broker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/e4c2/e4c2/client/credential"
)

// The device front end: MQTT 3.1.1 connections of E4 devices are served by
// this file's compact session code instead of mochi's per-connection
// goroutines (see doc.go, Memory). Everybody else still goes to mochi.
//
// A device session is still a mochi *Client in mochi's client table, with
// its subscriptions in mochi's topic index and its QoS 1/2 messages in the
// client's Inflight: routing, the ACL hooks, the persistence file, the
// expiry, Deliver's correlation and the order repairs all keep working on
// the same data. What changes is who drives the connection. The client has
// no net.Conn (Net.Conn == nil) while it is open, which makes mochi treat
// every message for it as queued for a disconnected client: it stores the
// message in Inflight (and in the file), calls the OnQosPublish hooks and
// writes nothing. frontHook, the last hook, then writes the PUBLISH to the
// device itself, from the publisher's goroutine, under the session's write
// lock and a write deadline. QoS 0 messages, which mochi drops for a client
// without a connection, come through one inline subscription on "#".
// Packets from the device are decoded here and handed to mochi with
// InjectPacket (same processing, hooks and ACL as a mochi connection);
// the replies mochi would have written (PUBACK, PUBREC, PUBREL, PUBCOMP,
// SUBACK, UNSUBACK, PINGRESP) are written here.
//
// One goroutine per device, which blocks in conn.Read a few small frames
// deep: after the processing of a packet grew its stack, the garbage
// collector can shrink it back to the 2 KiB minimum.

// frontListenerTimeouts.
var (
	// connectTimeout bounds the wait for a connection's CONNECT packet.
	connectTimeout = 10 * time.Second
	// writeTimeout bounds one write to a device. A device that does not
	// read for that long is disconnected (its messages stay queued in its
	// session), so that a publisher is never held longer.
	writeTimeout = 10 * time.Second
	// takeoverWait bounds the wait for a mochi connection of the same
	// client id to finish its teardown during a take-over.
	takeoverWait = 2 * time.Second
)

// frontBufSize is the session's fixed read buffer: big enough for every
// packet of an idle device's life (acks, PINGREQ, a SUBSCRIBE to its
// control topic); larger packets are read into a buffer of their own.
const frontBufSize = 64

// maxConnectSize caps the CONNECT packet read on the accept path (a
// device's is a few hundred bytes); a bigger one goes to mochi unread.
const maxConnectSize = 16 << 10

// errTakenOver ends a session whose device connected again.
var errTakenOver = errors.New("broker: session taken over")

// errClientStopped ends a session that mochi stopped (e.g. the receive
// maximum exceeded, or a publish the ACL refused at QoS 1/2).
var errClientStopped = errors.New("broker: session stopped by the broker")

// frontEnd serves device connections and holds their sessions.
type frontEnd struct {
	srv       *mqtt.Server
	auth      *authHook
	order     *orderHook
	devices   *deviceHook
	hooks     []mqtt.Hook // the broker's hooks, in the order mochi calls them
	poll      *poller     // nil: a goroutine per session (no epoll, or it failed)
	stopSweep chan struct{}
	sweepDone chan struct{} // closed when the sweep goroutine returned
	maxPacket int
	log       *slog.Logger

	shards [deviceShards]frontShard
	live   atomic.Int64 // registered sessions (the QoS 0 path skips work at 0)
	// anyQoS0 is set for good once a session holds a QoS 0 subscription:
	// until then a QoS 1/2 message needs no second routing (qos0).
	anyQoS0 atomic.Bool

	// Sessions from their establishment to the end of their teardown,
	// which Close waits for. (A WaitGroup may not grow from zero while
	// Close waits.)
	cmu     sync.Mutex
	count   int
	closing bool
	drained chan struct{}
}

type frontShard struct {
	mu sync.Mutex
	m  map[[16]byte]*session
	// emu orders a session's establishment (taking the client id over)
	// and the end of a clean session (giving the id up), so that the
	// latter never removes its successor's entries, which share the
	// client id.
	emu sync.Mutex
}

// session is one device connection.
type session struct {
	fe   *frontEnd
	conn net.Conn
	cl   *mqtt.Client
	id   [16]byte
	wmu  sync.Mutex // serialises writes to conn
	// pmu is read-held while mochi processes one of the device's packets,
	// so that a take-over can wait for the packet in progress (an old
	// SUBSCRIBE must not land in mochi's topic index after the session
	// moved).
	pmu sync.RWMutex

	keepalive time.Duration // read deadline (1.5x the keepalive), 0: none
	graceful  bool          // the device sent DISCONNECT (reader goroutine only)
	gone      atomic.Bool   // taken over: teardown leaves the shared session alone
	n         int           // bytes in buf
	buf       [frontBufSize]byte

	// With the poller (raw != nil): who reads, see ready and kill.
	raw   syscall.RawConn
	tok   int32        // the poller's token
	last  atomic.Int64 // unix nanoseconds of the last read (the keepalive sweep)
	smu   sync.Mutex
	state uint8 // stIdle, stBusy, stDying, stDead
	cause error // why a busy session was killed
}

// Session states. A session without the poller is stBusy for its whole
// life (its goroutine reads).
const (
	stBusy  uint8 = iota // a goroutine reads and processes its packets
	stIdle               // armed in the poller, no goroutine
	stDying              // killed while busy: its goroutine ends it
	stDead               // torn down (or tearing down)
)

// serve is the accept path of one connection (Listener's per-connection
// goroutine). It reads the CONNECT: a device speaking MQTT 3.1.1 stays
// here, anything else goes to mochi with the bytes already read replayed.
// Its frame is small on purpose: the session loop runs below it.
func (f *frontEnd) serve(lid string, c net.Conn, establish listeners.EstablishFn) error {
	s, other, err := f.open(lid, c)
	if err != nil {
		_ = c.Close()
		return err
	}
	if other != nil {
		err := establish(lid, other)
		_ = c.Close() // mochi closed it already; this releases the slot for sure
		return err
	}
	if s.raw != nil {
		s.idle()
		return nil
	}
	s.run()
	return nil
}

// open reads the CONNECT and sets up a device session, or returns the
// connection for mochi.
func (f *frontEnd) open(lid string, c net.Conn) (*session, net.Conn, error) {
	_ = c.SetReadDeadline(time.Now().Add(connectTimeout))
	raw, pk, ok := readConnect(c, min(f.maxPacket, maxConnectSize))
	if !ok || pk.ProtocolVersion != 4 {
		_ = c.SetReadDeadline(time.Time{})
		return nil, &replayConn{Conn: c, pre: raw}, nil
	}
	if _, dev := credential.ParseUsername(string(pk.Connect.Username)); !dev {
		_ = c.SetReadDeadline(time.Time{})
		return nil, &replayConn{Conn: c, pre: raw}, nil
	}
	_ = c.SetReadDeadline(time.Time{})
	s, err := f.connect(lid, c, pk)
	if err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	return s, nil, nil
}

// readConnect reads a CONNECT packet. It returns the bytes read (for a
// replay to mochi) and, when ok, the decoded packet. It never panics on
// malformed input: what it cannot decode goes to mochi, whose own decoder
// refuses it.
func readConnect(r io.Reader, max int) (raw []byte, pk packets.Packet, ok bool) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:1]); err != nil {
		return nil, pk, false
	}
	n := 1
	rem, mul := 0, 1
	for {
		if n == len(hdr) {
			return append([]byte(nil), hdr[:n]...), pk, false
		}
		if _, err := io.ReadFull(r, hdr[n:n+1]); err != nil {
			return append([]byte(nil), hdr[:n]...), pk, false
		}
		b := hdr[n]
		n++
		rem += int(b&0x7f) * mul
		mul *= 128
		if b&0x80 == 0 {
			break
		}
	}
	raw = append([]byte(nil), hdr[:n]...)
	if hdr[0]>>4 != packets.Connect || rem > max {
		return raw, pk, false
	}
	body := make([]byte, rem)
	if k, err := io.ReadFull(r, body); err != nil {
		return append(raw, body[:k]...), pk, false
	}
	raw = append(raw, body...)
	pk, ok = decodeConnect(hdr[0], body)
	return raw, pk, ok
}

// decodeConnect decodes a CONNECT body with mochi's decoder, turning a
// panic on malformed input into a refusal.
func decodeConnect(hb byte, body []byte) (pk packets.Packet, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	if err := pk.FixedHeader.Decode(hb); err != nil {
		return pk, false
	}
	pk.FixedHeader.Remaining = len(body)
	if err := pk.ConnectDecode(append([]byte(nil), body...)); err != nil {
		return pk, false
	}
	return pk, true
}

// replayConn hands mochi a connection whose first bytes were already read.
type replayConn struct {
	net.Conn
	pre []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// connect authenticates a device's CONNECT, answers it and establishes
// the session (taking over an existing one).
func (f *frontEnd) connect(lid string, c net.Conn, pk packets.Packet) (*session, error) {
	cl := f.srv.NewClient(nil, lid, "", false)
	cl.ParseConnect(lid, pk)
	// Own copies: the client would otherwise keep the whole CONNECT
	// packet (and the password in it) alive for the session's life.
	cl.Properties.Username = bytes.Clone(pk.Connect.Username)
	cl.Properties.Will.Payload = bytes.Clone(cl.Properties.Will.Payload)
	cl.Net.Remote = c.RemoteAddr().String()
	s := &session{fe: f, conn: c, cl: cl}
	s.last.Store(time.Now().UnixNano()) // before the keepalive sweep can see it
	if rc, ok := c.(interface{ rawConn() syscall.RawConn }); ok && f.poll != nil {
		s.raw = rc.rawConn()
	}
	s.id, _ = credential.ParseUsername(string(pk.Connect.Username))
	if ka := cl.State.Keepalive; ka > 0 {
		s.keepalive = time.Duration(ka)*time.Second + time.Duration(ka)*time.Second/2
	}
	code := pk.ConnectValidate()
	if code == packets.CodeSuccess && !f.auth.OnConnectAuthenticate(cl, pk) {
		code = packets.ErrBadUsernameOrPassword
	}
	if code != packets.CodeSuccess {
		if v3, ok := packets.V5CodesToV3[code]; ok {
			code = v3
		}
		_ = s.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ReasonCode: code.Code})
		return nil, fmt.Errorf("broker: device connect refused: %w", code)
	}
	if !f.enter() {
		return nil, ErrNotRunning
	}
	if err := f.establish(s, pk); err != nil {
		s.teardown(err)
		return nil, err
	}
	return s, nil
}

// establish mirrors mochi's attachClient from the session establishment
// to the resend of a resumed session, with the same hooks in the same
// order.
func (f *frontEnd) establish(s *session, pk packets.Packet) error {
	cl := s.cl
	// Before the write lock: the take-over gate waits for in-process
	// publishes, which may wait for this session's write lock.
	f.order.OnSessionEstablish(cl, pk)
	// A clean session replacing another holds the gate too, until it is
	// in the client table: an in-process publish that routed to the old
	// session's subscription would otherwise reach the new one before it
	// subscribed (mochi looks the client up by id after the routing).
	gated := false
	if _, ok := f.srv.Clients.Get(cl.ID); ok && pk.Connect.Clean {
		f.order.gate.Lock()
		gated = true
	}
	s.wmu.Lock()
	sh := f.shard(s.id)
	sh.emu.Lock()
	present := f.inherit(s, pk)
	f.register(s)
	f.srv.Clients.Add(cl)
	sh.emu.Unlock()
	if gated {
		f.order.gate.Unlock()
	}
	ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, SessionPresent: present}
	err := s.writeLocked(ack)
	if err == nil {
		f.devices.OnPacketSent(cl, ack, nil)
		if present {
			err = f.resend(s)
		}
	}
	s.wmu.Unlock()
	f.each(mqtt.OnSessionEstablished, func(h mqtt.Hook) { h.OnSessionEstablished(cl, pk) })
	return err
}

// inherit takes over the session of the same client id, as mochi's
// inheritClientSession does, and reports whether a session was resumed.
// mochi marks a taken-over client with a flag only it can set; sessions
// here carry their own (gone), and the old client's state is moved
// without the calls by client id that would hit the new client.
func (f *frontEnd) inherit(s *session, pk packets.Packet) bool {
	cl := s.cl
	existing, ok := f.srv.Clients.Get(cl.ID)
	if !ok {
		return false
	}
	if old := f.lookup(existing); old != nil {
		old.takeOver()
	} else if !existing.Closed() {
		// A mochi connection (an MQTT 5 device, say): mochi's reader
		// tears a clean session down by client id once it ends, so wait
		// for that before the new session takes the id.
		_ = f.srv.DisconnectClient(existing, packets.ErrSessionTakenOver)
		if existing.Properties.Clean || existing.Properties.ProtocolVersion == 5 && existing.Properties.Props.SessionExpiryInterval == 0 {
			f.awaitGone(existing)
			return false
		}
	}
	if pk.Connect.Clean || (existing.Properties.Clean && existing.Properties.ProtocolVersion < 5) {
		f.srv.UnsubscribeClient(existing)
		existing.ClearInflights()
		return false
	}
	if existing.State.Inflight.Len() > 0 {
		cl.State.Inflight = existing.State.Inflight.Clone()
		if rm := f.srv.Options.Capabilities.ReceiveMaximum; rm != 0 {
			cl.State.Inflight.ResetReceiveQuota(int32(rm))
			cl.State.Inflight.ResetSendQuota(int32(cl.Properties.Props.ReceiveMaximum))
		}
	}
	for filter, sub := range existing.State.Subscriptions.GetAll() {
		if f.srv.Topics.Subscribe(cl.ID, sub) {
			atomic.AddInt64(&f.srv.Info.Subscriptions, 1)
		}
		cl.State.Subscriptions.Add(filter, sub)
		existing.State.Subscriptions.Delete(filter)
		if sub.Qos == 0 {
			f.anyQoS0.Store(true)
		}
	}
	return true
}

// awaitGone waits (bounded) until a mochi connection's teardown removed
// it from the client table.
func (f *frontEnd) awaitGone(existing *mqtt.Client) {
	deadline := time.Now().Add(takeoverWait)
	for time.Now().Before(deadline) {
		if cur, ok := f.srv.Clients.Get(existing.ID); !ok || cur != existing {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// resend writes a resumed session's queued messages in queue order (the
// order hook restamped them for this sort) and acks, as mochi's
// ResendInflightMessages does. The write lock is held.
func (f *frontEnd) resend(s *session) error {
	cl := s.cl
	for _, tk := range cl.State.Inflight.GetAll(false) {
		if tk.FixedHeader.Type == packets.Publish {
			tk.FixedHeader.Dup = true
		}
		f.each(mqtt.OnQosPublish, func(h mqtt.Hook) {
			if _, self := h.(*frontHook); !self {
				h.OnQosPublish(cl, tk, tk.Created, 0)
			}
		})
		if err := s.writeLocked(tk); err != nil {
			return err
		}
		if tk.FixedHeader.Type == packets.Puback || tk.FixedHeader.Type == packets.Pubcomp {
			if cl.State.Inflight.Delete(tk.PacketID) {
				atomic.AddInt64(&f.srv.Info.Inflight, -1)
				f.each(mqtt.OnQosComplete, func(h mqtt.Hook) { h.OnQosComplete(cl, tk) })
			}
		}
	}
	return nil
}

// each calls fn for every hook providing event, in mochi's order.
func (f *frontEnd) each(event byte, fn func(mqtt.Hook)) {
	for _, h := range f.hooks {
		if h.Provides(event) {
			fn(h)
		}
	}
}

func (f *frontEnd) shard(id [16]byte) *frontShard { return &f.shards[id[0]%deviceShards] }

// register makes s its device's current session.
func (f *frontEnd) register(s *session) {
	sh := f.shard(s.id)
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = make(map[[16]byte]*session)
	}
	if _, ok := sh.m[s.id]; !ok {
		f.live.Add(1)
	}
	sh.m[s.id] = s
	sh.mu.Unlock()
}

// unregister forgets s unless a newer session replaced it.
func (f *frontEnd) unregister(s *session) {
	sh := f.shard(s.id)
	sh.mu.Lock()
	if sh.m[s.id] == s {
		delete(sh.m, s.id)
		f.live.Add(-1)
	}
	sh.mu.Unlock()
}

// byID returns the current session of a device.
func (f *frontEnd) byID(id [16]byte) *session {
	sh := f.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.m[id]
}

// lookup returns the session driving cl, nil for any other client.
func (f *frontEnd) lookup(cl *mqtt.Client) *session {
	if !isFront(cl) {
		return nil
	}
	id, ok := deviceClientID(cl.ID)
	if !ok {
		return nil
	}
	if s := f.byID(id); s != nil && s.cl == cl {
		return s
	}
	return nil
}

// isFront reports whether cl may be a front-end client: mochi's own
// connections have a net.Conn, its in-process client is inline. (A session
// loaded from the persistence file has neither, but no front-end session
// either.)
func isFront(cl *mqtt.Client) bool {
	return cl != nil && cl.Net.Conn == nil && !cl.Net.Inline
}

// deviceClientID parses "e4dev-<hex id>".
func deviceClientID(cid string) ([16]byte, bool) {
	if !strings.HasPrefix(cid, credential.ClientIDPrefix) {
		return [16]byte{}, false
	}
	return credential.ParseUsername(cid[len(credential.ClientIDPrefix):])
}

// closeAll ends every session (the broker is closing) and waits, bounded,
// for their teardown, which must finish before mochi stops the hooks (the
// persistence file closes).
func (f *frontEnd) closeAll() {
	f.cmu.Lock()
	f.closing = true
	done := make(chan struct{})
	if f.count == 0 {
		close(done)
	} else {
		f.drained = done
	}
	f.cmu.Unlock()
	for i := range f.shards {
		sh := &f.shards[i]
		sh.mu.Lock()
		for _, s := range sh.m {
			s.cl.Stop(packets.ErrServerShuttingDown)
			s.kill(ErrNotRunning)
		}
		sh.mu.Unlock()
	}
	select {
	case <-done:
	case <-time.After(2 * writeTimeout):
		f.log.Warn("broker: device sessions still ending at close")
	}
}

// startSweep runs the keepalive sweep until stopSweepWait.
func (f *frontEnd) startSweep() {
	f.stopSweep, f.sweepDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(f.sweepDone)
		f.sweep(f.stopSweep)
	}()
}

// stopSweepWait stops the keepalive sweep and waits for it to return, so
// that nothing of a closed broker runs on.
func (f *frontEnd) stopSweepWait() {
	close(f.stopSweep)
	<-f.sweepDone
}

// sweepEvery is how often the keepalive sweep looks at idle sessions.
var sweepEvery = 250 * time.Millisecond

// sweep ends, until stop is closed, the poller's sessions that read
// nothing for their keepalive (1.5x the device's): one goroutine looking
// at every session a few times a second costs less than a timer on each
// of 10,000 sessions. Sessions with a goroutine use read deadlines.
func (f *frontEnd) sweep(stop <-chan struct{}) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	var late []*session
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			late = f.expired(now.UnixNano(), late[:0])
			for i, s := range late {
				s.kill(errKeepalive)
				late[i] = nil
			}
		}
	}
}

// expired appends the poller's sessions whose keepalive ran out.
func (f *frontEnd) expired(now int64, late []*session) []*session {
	for i := range f.shards {
		sh := &f.shards[i]
		sh.mu.Lock()
		for _, s := range sh.m {
			if s.raw != nil && s.keepalive > 0 && now-s.last.Load() > int64(s.keepalive) {
				late = append(late, s)
			}
		}
		sh.mu.Unlock()
	}
	return late
}

// enter counts a session in, unless the broker is closing.
func (f *frontEnd) enter() bool {
	f.cmu.Lock()
	defer f.cmu.Unlock()
	if f.closing {
		return false
	}
	f.count++
	return true
}

// leave counts a session out at the end of its teardown.
func (f *frontEnd) leave() {
	f.cmu.Lock()
	defer f.cmu.Unlock()
	f.count--
	if f.count == 0 && f.drained != nil {
		close(f.drained)
		f.drained = nil
	}
}

// isClosing reports whether the broker is closing.
func (f *frontEnd) isClosing() bool {
	f.cmu.Lock()
	defer f.cmu.Unlock()
	return f.closing
}

// release gives up the client id of a clean session that ends, unless a
// newer session took it: it leaves the client table and the topic index
// (no hooks: the caller runs them without the lock). It returns the
// subscriptions removed and whether it was still the id's session.
func (f *frontEnd) release(s *session) (packets.Subscriptions, bool) {
	sh := f.shard(s.id)
	sh.emu.Lock()
	defer sh.emu.Unlock()
	cl := s.cl
	if s.gone.Load() {
		return nil, false
	}
	if cur, ok := f.srv.Clients.Get(cl.ID); !ok || cur != cl {
		return nil, false
	}
	f.srv.Clients.Delete(cl.ID)
	var subs packets.Subscriptions
	for filter, sub := range cl.State.Subscriptions.GetAll() {
		cl.State.Subscriptions.Delete(filter)
		if f.srv.Topics.Unsubscribe(filter, cl.ID) {
			atomic.AddInt64(&f.srv.Info.Subscriptions, -1)
		}
		subs = append(subs, sub)
	}
	return subs, true
}

// qos0 is the handler of the inline subscription on "#": it delivers the
// messages that reach a front-end session at QoS 0 (mochi drops those for
// a client without a connection).
func (f *frontEnd) qos0(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
	if f.live.Load() == 0 || pk.Ignore || pk.FixedHeader.Qos > 0 && !f.anyQoS0.Load() {
		return
	}
	subs := f.srv.Topics.Subscribers(pk.TopicName)
	for cid, sub := range subs.Subscriptions {
		if min(pk.FixedHeader.Qos, sub.Qos) != 0 {
			continue
		}
		id, ok := deviceClientID(cid)
		if !ok {
			continue
		}
		s := f.byID(id)
		if s == nil || s.cl.ID != cid || !f.auth.mayRead(roleDevice, id, pk.TopicName) {
			continue
		}
		_ = s.write(qos0Copy(pk))
	}
}

// takeOver ends s for a newer connection of its device. Stopping the
// client first gives it the cause the storage hook checks so that it keeps
// the session's record.
func (s *session) takeOver() {
	s.gone.Store(true)
	s.cl.Stop(packets.ErrSessionTakenOver)
	s.quiesce()
	s.kill(errTakenOver)
}

// quiesce waits for the packet mochi is processing for s, if any (no new
// one starts once gone is set). The wait is bounded: a hook blocked in
// that processing must not hold the successor forever.
func (s *session) quiesce() {
	deadline := time.Now().Add(takeoverWait)
	for !s.pmu.TryLock() {
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(time.Millisecond)
	}
	s.pmu.Unlock()
}

// write encodes pk and writes it to the device.
func (s *session) write(pk packets.Packet) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.writeLocked(pk)
}

// writeLocked writes with the write lock held. A failed write closes the
// connection: the reader then ends the session, whose queued messages stay
// for the next connection.
func (s *session) writeLocked(pk packets.Packet) error {
	pk.ProtocolVersion = 4
	var buf bytes.Buffer
	if err := encode(&buf, pk); err != nil {
		return err
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := s.conn.Write(buf.Bytes()); err != nil {
		s.kill(err)
		return fmt.Errorf("broker: write to device: %w", err)
	}
	return nil
}

// encode encodes the packets a broker sends with mochi's encoders.
func encode(buf *bytes.Buffer, pk packets.Packet) error {
	switch pk.FixedHeader.Type {
	case packets.Connack:
		return pk.ConnackEncode(buf)
	case packets.Publish:
		return pk.PublishEncode(buf)
	case packets.Puback:
		return pk.PubackEncode(buf)
	case packets.Pubrec:
		return pk.PubrecEncode(buf)
	case packets.Pubrel:
		return pk.PubrelEncode(buf)
	case packets.Pubcomp:
		return pk.PubcompEncode(buf)
	case packets.Suback:
		return pk.SubackEncode(buf)
	case packets.Unsuback:
		return pk.UnsubackEncode(buf)
	case packets.Pingresp:
		return pk.PingrespEncode(buf)
	}
	return fmt.Errorf("%w: %v", packets.ErrNoValidPacketAvailable, pk.FixedHeader.Type)
}
