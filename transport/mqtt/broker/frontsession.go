package broker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// errMalformed ends a session whose device sent something that is not
// MQTT 3.1.1; the details stay out of the error (they are the device's
// bytes).
var errMalformed = errors.New("broker: malformed packet from device")

// errTooLarge ends a session whose device announced a packet above the
// broker's maximum packet size, before anything is allocated for it.
var errTooLarge = errors.New("broker: packet from device above the maximum size")

// run is the session's reader loop. Its frame and fill's are all that sit
// on the goroutine's stack while the device is idle.
func (s *session) run() {
	var err error
	for err == nil {
		if err = s.fill(); err == nil {
			err = s.drain()
		}
	}
	s.teardown(err)
}

// fill reads what the device sent into the fixed buffer.
func (s *session) fill() error {
	if s.keepalive > 0 && s.raw == nil {
		// (The poller's sessions have the keepalive sweep instead.)
		_ = s.conn.SetReadDeadline(time.Now().Add(s.keepalive))
	}
	n, err := s.conn.Read(s.buf[s.n:])
	s.n += n
	if n > 0 {
		return nil // an error comes back with the next read
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// drain processes the complete packets in the buffer. A packet longer
// than the buffer is read whole into its own allocation.
func (s *session) drain() error {
	for s.n >= 2 {
		rem, hl, ok := remainingLength(s.buf[1:s.n])
		if hl < 0 {
			return errMalformed
		}
		if !ok {
			return nil // the length itself is incomplete
		}
		if rem > s.fe.maxPacket {
			return errTooLarge
		}
		total := 1 + hl + rem
		if total > s.n && total <= len(s.buf) {
			return nil // wait for the rest
		}
		hb := s.buf[0]
		body, err := s.take(hl, rem, total)
		if err != nil {
			return err
		}
		if err := s.handle(hb, body); err != nil {
			return err
		}
	}
	return nil
}

// take returns the body of the packet at the start of the buffer, in an
// allocation of its own (decoded packets keep slices of it), and consumes
// it from the buffer.
func (s *session) take(hl, rem, total int) ([]byte, error) {
	body := make([]byte, rem)
	if total <= s.n {
		copy(body, s.buf[1+hl:total])
		s.n = copy(s.buf[:], s.buf[total:s.n])
		return body, nil
	}
	have := copy(body, s.buf[1+hl:s.n])
	s.n = 0
	if s.keepalive > 0 && s.raw == nil {
		// (The poller's sessions have the keepalive sweep instead.)
		_ = s.conn.SetReadDeadline(time.Now().Add(s.keepalive))
	}
	if _, err := io.ReadFull(s.conn, body[have:]); err != nil {
		return nil, fmt.Errorf("broker: read from device: %w", err)
	}
	return body, nil
}

// remainingLength decodes an MQTT variable byte integer: the value, the
// bytes it took (-1 when malformed) and whether it was complete.
func remainingLength(b []byte) (n, size int, ok bool) {
	mul := 1
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, false
		}
		n += int(b[i]&0x7f) * mul
		if b[i]&0x80 == 0 {
			return n, i + 1, true
		}
		mul *= 128
	}
	return 0, -1, false
}

// decodePacket decodes a packet from a device with mochi's decoders; a
// panic on malformed input becomes an error.
func decodePacket(hb byte, body []byte) (pk packets.Packet, err error) {
	defer func() {
		if recover() != nil {
			err = errMalformed
		}
	}()
	if err := pk.FixedHeader.Decode(hb); err != nil {
		return pk, errMalformed
	}
	pk.FixedHeader.Remaining = len(body)
	pk.ProtocolVersion = 4
	switch pk.FixedHeader.Type {
	case packets.Publish:
		err = pk.PublishDecode(body)
	case packets.Puback:
		err = pk.PubackDecode(body)
	case packets.Pubrec:
		err = pk.PubrecDecode(body)
	case packets.Pubrel:
		err = pk.PubrelDecode(body)
	case packets.Pubcomp:
		err = pk.PubcompDecode(body)
	case packets.Subscribe:
		err = pk.SubscribeDecode(body)
	case packets.Unsubscribe:
		err = pk.UnsubscribeDecode(body)
	case packets.Pingreq, packets.Disconnect:
	default:
		return pk, errMalformed // CONNECT again, or a packet only a broker sends
	}
	if err != nil {
		return pk, errMalformed
	}
	return pk, nil
}

// handle processes one packet from the device: mochi processes it as if
// its own reader had read it, and the reply mochi would have written goes
// out here.
func (s *session) handle(hb byte, body []byte) error {
	pk, err := decodePacket(hb, body)
	if err != nil {
		return err
	}
	switch pk.FixedHeader.Type {
	case packets.Pingreq:
		return s.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingresp}})
	case packets.Disconnect:
		s.graceful = true
		return io.EOF
	}
	if err := s.inject(pk); err != nil {
		return err
	}
	return s.reply(pk)
}

// inject hands a packet to mochi, unless the session was taken over.
func (s *session) inject(pk packets.Packet) error {
	s.pmu.RLock()
	defer s.pmu.RUnlock()
	if s.gone.Load() {
		return errTakenOver
	}
	if err := s.fe.srv.InjectPacket(s.cl, pk); err != nil {
		return fmt.Errorf("broker: device packet: %w", err)
	}
	if s.cl.Closed() {
		return errClientStopped
	}
	return nil
}

// reply writes the acknowledgement of a processed packet. The SUBACK went
// out from frontHook.OnSubscribed, before any retained message.
func (s *session) reply(pk packets.Packet) error {
	var t byte
	switch pk.FixedHeader.Type {
	case packets.Publish:
		switch pk.FixedHeader.Qos {
		case 1:
			t = packets.Puback
		case 2:
			t = packets.Pubrec
		}
	case packets.Pubrec:
		t = packets.Pubrel
	case packets.Pubrel:
		t = packets.Pubcomp
	case packets.Unsubscribe:
		t = packets.Unsuback
	}
	if t == 0 {
		return nil
	}
	ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: t}, PacketID: pk.PacketID}
	if t == packets.Pubrel {
		ack.FixedHeader.Qos = 1
	}
	return s.write(ack)
}

// teardown mirrors the end of mochi's attachClient: the will, the
// disconnect hooks, and the removal of a clean session. A session taken
// over leaves the shared state (client id, subscriptions, stored record)
// to its successor.
func (s *session) teardown(err error) {
	f, cl := s.fe, s.cl
	defer f.leave()
	if !s.graceful && !s.gone.Load() && !f.isClosing() {
		f.sendWill(cl)
	}
	if s.graceful {
		cl.Properties.Will = mqtt.Will{}
	}
	cl.Stop(err)
	if s.raw != nil {
		f.poll.remove(s)
	}
	_ = s.conn.Close()
	f.unregister(s)
	expire := cl.Properties.Clean
	var subs packets.Subscriptions
	owned := false
	if expire {
		subs, owned = f.release(s)
	}
	f.each(mqtt.OnDisconnect, func(h mqtt.Hook) { h.OnDisconnect(cl, err, expire) })
	if owned {
		cl.ClearInflights()
		if len(subs) > 0 {
			un := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Unsubscribe}, Filters: subs}
			f.each(mqtt.OnUnsubscribed, func(h mqtt.Hook) { h.OnUnsubscribed(cl, un) })
		}
	}
}

// sendWill publishes a device's will after an abnormal disconnect. Its
// topic passed the publish ACL at CONNECT; like mochi's own will it is
// not seen by the publish tap.
func (f *frontEnd) sendWill(cl *mqtt.Client) {
	w := cl.Properties.Will
	if w.Flag == 0 {
		return
	}
	cl.Properties.Will = mqtt.Will{}
	if err := f.srv.Publish(w.TopicName, w.Payload, w.Retain, w.Qos); err != nil {
		f.log.Debug("broker: device will not published", "error", err)
	}
}

// frontHook is the broker's last hook: it writes to front-end sessions
// what mochi queued for them, once every other hook (the persistence file
// in particular) has seen it.
type frontHook struct {
	mqtt.HookBase
	fe *frontEnd
}

func (h *frontHook) ID() string { return "e4-front" }

func (h *frontHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnQosPublish, mqtt.OnSubscribed, mqtt.OnSessionEstablish}, []byte{b})
}

// OnQosPublish writes a QoS 1/2 PUBLISH that mochi queued for a session.
func (h *frontHook) OnQosPublish(cl *mqtt.Client, pk packets.Packet, _ int64, _ int) {
	if pk.FixedHeader.Type != packets.Publish {
		return
	}
	if s := h.fe.lookup(cl); s != nil {
		_ = s.write(pk)
	}
}

// OnSubscribed writes the SUBACK of a session's SUBSCRIBE, before mochi
// sends it retained messages.
func (h *frontHook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	if pk.FixedHeader.Type != packets.Subscribe || pk.PacketID == 0 {
		return
	}
	s := h.fe.lookup(cl)
	if s == nil {
		return
	}
	if bytes.IndexByte(codes, 0) >= 0 {
		h.fe.anyQoS0.Store(true)
	}
	if s.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Suback},
		PacketID: pk.PacketID, ReasonCodes: codes}) != nil {
		return
	}
	// mochi sends the retained messages next, but drops those at QoS 0
	// (no connection): they go out here.
	for i, sub := range pk.Filters {
		if i >= len(codes) || codes[i] > packets.CodeGrantedQos2.Code {
			continue
		}
		for _, m := range h.fe.srv.Topics.Messages(sub.Filter) {
			if min(m.FixedHeader.Qos, codes[i]) == 0 && h.fe.auth.mayRead(roleDevice, s.id, m.TopicName) {
				out := qos0Copy(m)
				out.FixedHeader.Retain = true // sent because of the subscription
				_ = s.write(out)
			}
		}
	}
}

// qos0Copy is a message as a QoS 0 PUBLISH to a device.
func qos0Copy(pk packets.Packet) packets.Packet {
	out := pk.Copy(false)
	out.FixedHeader.Qos, out.FixedHeader.Retain, out.FixedHeader.Dup = 0, false, false
	out.PacketID = 0
	return out
}

// OnSessionEstablish ends the front-end session of a client id that a
// mochi connection (an MQTT 5 device) is taking over, before mochi moves
// the session.
func (h *frontHook) OnSessionEstablish(cl *mqtt.Client, _ packets.Packet) {
	if isFront(cl) {
		return
	}
	id, ok := deviceClientID(cl.ID)
	if !ok {
		return
	}
	if s := h.fe.byID(id); s != nil {
		s.takeOver()
	}
}

// idle hands a new session to the poller; the accepting goroutine ends.
func (s *session) idle() {
	s.smu.Lock()
	if s.state == stDying { // killed during its establishment
		s.state = stDead
		err := s.cause
		s.smu.Unlock()
		s.teardown(err)
		return
	}
	if err := s.fe.poll.assign(s); err != nil {
		s.state = stDead
		s.smu.Unlock()
		s.teardown(err)
		return
	}
	s.state = stIdle
	s.smu.Unlock()
	if err := s.fe.poll.add(s); err != nil {
		s.kill(err)
	}
}

// errKeepalive ends a session that sent nothing for 1.5 keepalives.
var errKeepalive = errors.New("broker: device keepalive expired")

// ready is the poller's call: the connection is readable.
func (s *session) ready() {
	s.smu.Lock()
	if s.state != stIdle {
		s.smu.Unlock()
		return
	}
	s.state = stBusy
	s.smu.Unlock()
	go s.work()
}

// work reads and processes what the device sent, then goes back to the
// poller: a packet cut short is waited for here, under the keepalive
// deadline.
func (s *session) work() {
	err := s.fill()
	for err == nil {
		if err = s.drain(); err != nil || s.n == 0 {
			break
		}
		err = s.fill()
	}
	if err == nil {
		s.last.Store(time.Now().UnixNano())
	}
	s.smu.Lock()
	if err == nil && s.state == stBusy {
		s.state = stIdle
		s.smu.Unlock()
		if err = s.fe.poll.arm(s); err != nil {
			s.kill(err)
		}
		return
	}
	if err == nil {
		err = s.cause
	}
	s.state = stDead
	s.smu.Unlock()
	s.teardown(err)
}

// kill ends the session from outside its reading: an idle session is
// torn down (on a goroutine of its own: the caller may hold locks the
// teardown's hooks take), a busy one is told to end and its connection
// closed under it.
func (s *session) kill(err error) {
	s.smu.Lock()
	switch s.state {
	case stIdle:
		s.state = stDead
		s.smu.Unlock()
		go s.teardown(err)
		return
	case stBusy:
		s.state = stDying
		s.cause = err
	}
	s.smu.Unlock()
	_ = s.conn.Close()
}
