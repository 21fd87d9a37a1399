package broker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/e4c2/e4c2/internal/testwait"
)

// frontSessions returns the number of device sessions the front end
// serves (0 when stopped).
func (b *Broker) frontSessions() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.front == nil {
		return 0
	}
	return int(b.front.live.Load())
}

// frontModes runs a test with the poller (plain TCP) and with a goroutine
// per session (a wrapped listener hands over connections that are not
// *net.TCPConn, as TLS does).
func frontModes(t *testing.T, test func(t *testing.T, wrap func(net.Listener) net.Listener)) {
	t.Run("poller", func(t *testing.T) { test(t, nil) })
	t.Run("goroutine", func(t *testing.T) {
		test(t, func(l net.Listener) net.Listener { return wrappedListener{l} })
	})
}

type wrappedListener struct{ net.Listener }

type wrappedConn struct{ net.Conn }

func (l wrappedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return wrappedConn{c}, nil
}

func (a *testAuthority) allow(sub, pub []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range sub {
		a.subscribe[t] = true
	}
	for _, t := range pub {
		a.publish[t] = true
	}
}

// A device's QoS 0, 1 and 2 publishes reach a mochi subscriber with their
// acknowledgements, and what others publish reaches the device at the QoS
// it subscribed with.
func TestFrontQoSFlows(t *testing.T) {
	frontModes(t, func(t *testing.T, wrap func(net.Listener) net.Listener) {
		auth := newAuthority()
		a := auth.device(1)
		auth.allow([]string{"down/0", "down/1", "down/2"}, []string{"up"})
		b := startBroker(t, Config{Authority: auth, AllowAnonymous: true, WrapListener: wrap})
		dev := mustDial(t, b.Addr(), rawConnect{version: 4, clientID: clientID(a), user: user(a), pass: auth.password(a), clean: true})
		if n := b.frontSessions(); n != 1 {
			t.Fatalf("%d front-end sessions, want 1", n)
		}
		for q := byte(0); q <= 2; q++ {
			if codes := dev.subscribe(t, q, "down/"+strconv.Itoa(int(q))); !bytes.Equal(codes, []byte{q}) {
				t.Fatalf("SUBACK %v, want [%d]", codes, q)
			}
		}
		mon := mustDial(t, b.Addr(), rawConnect{version: 4, clientID: "monitor", clean: true})
		mon.subscribe(t, 2, "up")

		for q := byte(0); q <= 2; q++ {
			pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: q}, TopicName: "up",
				Payload: []byte{'0' + q}}
			if q > 0 {
				pk.PacketID = uint16(10 + q)
			}
			if err := dev.send(pk); err != nil {
				t.Fatal(err)
			}
			switch q {
			case 1:
				expectPacket(t, dev, packets.Puback, 11)
			case 2:
				expectPacket(t, dev, packets.Pubrec, 12)
				if err := dev.ack(packets.Pubrel, 12); err != nil {
					t.Fatal(err)
				}
				expectPacket(t, dev, packets.Pubcomp, 12)
			}
			got := readPublish(t, mon)
			if string(got.Payload) != string(pk.Payload) {
				t.Fatalf("monitor got %q, want %q", got.Payload, pk.Payload)
			}
			ackPublish(t, mon, got)
		}

		for q := byte(0); q <= 2; q++ {
			if err := b.Publish("down/"+strconv.Itoa(int(q)), []byte("m")); err != nil {
				t.Fatal(err)
			}
			got := readPublish(t, dev)
			if got.FixedHeader.Qos != q || got.TopicName != "down/"+strconv.Itoa(int(q)) {
				t.Fatalf("device got %q at QoS %d, want QoS %d", got.TopicName, got.FixedHeader.Qos, q)
			}
			ackPublish(t, dev, got)
		}
		testwait.For(t, "nothing in flight", func() bool { return b.Inflight() == 0 })
		// UNSUBSCRIBE: acknowledged, and nothing arrives after it.
		if _, err := dev.conn.Write([]byte{0xa2, 0x0a, 0x00, 0x07, 0x00, 0x06, 'd', 'o', 'w', 'n', '/', '0'}); err != nil {
			t.Fatal(err)
		}
		if pk, err := dev.read(3 * time.Second); err != nil || pk.FixedHeader.Type != packets.Unsuback {
			t.Fatalf("got type %d (%v), want UNSUBACK", pk.FixedHeader.Type, err)
		}
		if err := b.Publish("down/0", []byte("late")); err != nil {
			t.Fatal(err)
		}
		if other := dev.roundTrip(t); len(other) != 0 {
			t.Fatalf("after UNSUBSCRIBE the device got %+v", other[0].FixedHeader)
		}
	})
}

func expectPacket(t *testing.T, rc *rawClient, typ byte, id uint16) {
	t.Helper()
	pk, err := rc.read(3 * time.Second)
	if err != nil || pk.FixedHeader.Type != typ || pk.PacketID != id {
		t.Fatalf("got type %d id %d (%v), want type %d id %d", pk.FixedHeader.Type, pk.PacketID, err, typ, id)
	}
}

func readPublish(t *testing.T, rc *rawClient) packets.Packet {
	t.Helper()
	pk, err := rc.read(3 * time.Second)
	if err != nil || pk.FixedHeader.Type != packets.Publish {
		t.Fatalf("got type %d (%v), want PUBLISH", pk.FixedHeader.Type, err)
	}
	return pk
}

// ackPublish completes the QoS exchange of a received PUBLISH.
func ackPublish(t *testing.T, rc *rawClient, pk packets.Packet) {
	t.Helper()
	switch pk.FixedHeader.Qos {
	case 1:
		if err := rc.ack(packets.Puback, pk.PacketID); err != nil {
			t.Fatal(err)
		}
	case 2:
		if err := rc.ack(packets.Pubrec, pk.PacketID); err != nil {
			t.Fatal(err)
		}
		expectPacket(t, rc, packets.Pubrel, pk.PacketID)
		if err := rc.ack(packets.Pubcomp, pk.PacketID); err != nil {
			t.Fatal(err)
		}
	}
}

// A new connection of a device takes its persistent session over: the old
// connection is closed, the unacknowledged commands come again in order,
// and Deliver is confirmed on the new one.
func TestFrontTakeover(t *testing.T) {
	frontModes(t, func(t *testing.T, wrap func(net.Listener) net.Listener) {
		auth := newAuthority()
		a := auth.device(1)
		obs := &countObserver{}
		b := startBroker(t, Config{Authority: auth, Observer: obs, WrapListener: wrap})
		rc := rawConnect{version: 4, clientID: clientID(a), user: user(a), pass: auth.password(a)}
		old := mustDial(t, b.Addr(), rc)
		old.subscribe(t, 2, ControlTopic(a))
		for i := range 3 {
			if err := b.Publish(ControlTopic(a), []byte(strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
			readPublish(t, old) // never acknowledged
		}
		nw, ack, err := dialRaw(t, b.Addr(), rc)
		if err != nil || !ack.SessionPresent {
			t.Fatalf("take-over: %v, session present %v", err, ack.SessionPresent)
		}
		var resent []packets.Packet
		for i := range 3 {
			pk := readPublish(t, nw)
			if string(pk.Payload) != strconv.Itoa(i) || !pk.FixedHeader.Dup {
				t.Fatalf("resent %d: %q dup %v", i, pk.Payload, pk.FixedHeader.Dup)
			}
			resent = append(resent, pk)
		}
		for _, pk := range resent {
			ackPublish(t, nw, pk)
		}
		if _, err := old.read(3 * time.Second); err == nil {
			t.Fatal("the old connection still delivers")
		}
		go nw.serveQoS2(nil)
		testwait.For(t, "online", func() bool { return b.Online(a) })
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := b.Deliver(ctx, a, []byte("after")); err != nil {
			t.Fatal(err)
		}
		if n := b.frontSessions(); n != 1 {
			t.Fatalf("%d front-end sessions, want 1", n)
		}
		// Online twice; offline is not reported for a connection
		// replaced after its successor came online.
		if on, _ := obs.counts(); on < 2 {
			t.Fatalf("observer: %d online", on)
		}
	})
}

type countObserver struct {
	mu      sync.Mutex
	on, off int
}

func (o *countObserver) DeviceOnline([16]byte, bool) { o.mu.Lock(); o.on++; o.mu.Unlock() }
func (o *countObserver) DeviceOffline([16]byte)      { o.mu.Lock(); o.off++; o.mu.Unlock() }
func (o *countObserver) counts() (int, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.on, o.off
}

// A persistent device session survives a broker restart with the
// persistence file: its subscription, a queued command, and a command the
// device had acknowledged with PUBREC (PUBREL comes again, not the
// PUBLISH).
func TestFrontPersistAcrossRestart(t *testing.T) {
	auth := newAuthority()
	a := auth.device(1)
	path := filepath.Join(t.TempDir(), "b.db")
	addr := freeAddr(t)
	b := startBroker(t, Config{Address: addr, Authority: auth, PersistPath: path})
	rc := rawConnect{version: 4, clientID: clientID(a), user: user(a), pass: auth.password(a)}
	dev := mustDial(t, addr, rc)
	dev.subscribe(t, 2, ControlTopic(a))
	if err := b.Publish(ControlTopic(a), []byte("half")); err != nil {
		t.Fatal(err)
	}
	half := readPublish(t, dev)
	if err := dev.ack(packets.Pubrec, half.PacketID); err != nil {
		t.Fatal(err)
	}
	expectPacket(t, dev, packets.Pubrel, half.PacketID)
	dev.conn.Close()
	testwait.For(t, "offline", func() bool { return !b.Online(a) && b.frontSessions() == 0 })
	if err := b.Publish(ControlTopic(a), []byte("queued")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	dev, ack, err := dialRaw(t, addr, rc)
	if err != nil || !ack.SessionPresent {
		t.Fatalf("reconnect: %v, session present %v", err, ack.SessionPresent)
	}
	expectPacket(t, dev, packets.Pubrel, half.PacketID)
	if err := dev.ack(packets.Pubcomp, half.PacketID); err != nil {
		t.Fatal(err)
	}
	q := readPublish(t, dev)
	if string(q.Payload) != "queued" {
		t.Fatalf("got %q, want the queued command", q.Payload)
	}
	ackPublish(t, dev, q)
	testwait.For(t, "online", func() bool { return b.Online(a) })
	if other := dev.roundTrip(t); len(other) != 0 {
		t.Fatalf("got %+v after the session's messages", other[0].FixedHeader)
	}
}

// A device with a wrong credential is refused with CONNACK "not
// authorized" and its connection closed; an unknown protocol level goes
// to mochi, which refuses it too.
func TestFrontWrongCredential(t *testing.T) {
	auth := newAuthority()
	a := auth.device(1)
	b := startBroker(t, Config{Authority: auth})
	rc, ack, err := dialRaw(t, b.Addr(), rawConnect{version: 4, clientID: clientID(a), user: user(a), pass: "wrong", clean: true})
	if err != nil || ack.ReasonCode != packets.Err3NotAuthorized.Code {
		t.Fatalf("CONNACK %#x (%v), want not authorized", ack.ReasonCode, err)
	}
	if _, err := rc.read(3 * time.Second); err == nil {
		t.Fatal("refused connection still open")
	}
	if n := b.frontSessions(); n != 0 {
		t.Fatalf("%d sessions after a refusal", n)
	}
	_, ack, err = dialRaw(t, b.Addr(), rawConnect{version: 4, clientID: clientID(a), user: user(auth.device(2)), pass: auth.password(a), clean: true})
	if err != nil || ack.ReasonCode == 0 {
		t.Fatalf("another device's username accepted: %#x %v", ack.ReasonCode, err)
	}
}

// An MQTT 5 device is served by mochi, with the same rights and Deliver.
func TestFrontMQTT5DeviceServedByMochi(t *testing.T) {
	auth := newAuthority()
	a := auth.device(1)
	b := startBroker(t, Config{Authority: auth})
	dev := mustDial(t, b.Addr(), rawConnect{version: 5, clientID: clientID(a), user: user(a), pass: auth.password(a), clean: true})
	dev.subscribe(t, 2, ControlTopic(a))
	if n := b.frontSessions(); n != 0 {
		t.Fatalf("MQTT 5 device in the front end (%d sessions)", n)
	}
	go dev.serveQoS2(nil)
	testwait.For(t, "online", func() bool { return b.Online(a) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := b.Deliver(ctx, a, []byte("v5")); err != nil {
		t.Fatal(err)
	}
	// And a 3.1.1 connection of the same device takes it over.
	dev2 := deviceSubscribed(t, b, auth, a, 2)
	ended := make(chan struct{})
	go func() { dev2.serveQoS2(nil); close(ended) }()
	testwait.For(t, "front end", func() bool { return b.frontSessions() == 1 && b.Online(a) })
	if err := b.Deliver(ctx, a, []byte("v4")); err != nil {
		t.Fatal(err)
	}
	// And an MQTT 5 connection takes the front end's session over.
	dev3 := mustDial(t, b.Addr(), rawConnect{version: 5, clientID: clientID(a), user: user(a), pass: auth.password(a), clean: true})
	select {
	case <-ended:
	case <-time.After(3 * time.Second):
		t.Fatal("the 3.1.1 connection survived the take-over")
	}
	dev3.subscribe(t, 2, ControlTopic(a))
	go dev3.serveQoS2(nil)
	testwait.For(t, "back on mochi", func() bool { return b.frontSessions() == 0 && b.Online(a) })
	if err := b.Deliver(ctx, a, []byte("v5 again")); err != nil {
		t.Fatal(err)
	}
}

// Malformed and oversized packets from a device end its connection, never
// the broker.
func TestFrontMalformedPackets(t *testing.T) {
	auth := newAuthority()
	a := auth.device(1)
	b := startBroker(t, Config{Authority: auth, MaxPacketSize: 1024})
	for name, raw := range map[string][]byte{
		"length over 4 bytes": {0x30, 0xff, 0xff, 0xff, 0xff, 0x7f},
		"oversized":           {0x30, 0x80, 0x80, 0x04},
		"reserved type":       {0xf0, 0x00},
		"connect again":       {0x10, 0x00},
		"short publish":       {0x32, 0x01, 0x00},
		"bad subscribe flags": {0x80, 0x02, 0x00, 0x01},
		"empty subscribe":     {0x82, 0x02, 0x00, 0x01},
	} {
		dev := deviceSubscribed(t, b, auth, a, 2)
		if _, err := dev.conn.Write(raw); err != nil {
			t.Fatal(err)
		}
		if pk, err := dev.read(3 * time.Second); err == nil {
			t.Fatalf("%s: answered with type %d, want the connection closed", name, pk.FixedHeader.Type)
		}
	}
	dev := deviceSubscribed(t, b, auth, a, 2)
	if other := dev.roundTrip(t); len(other) != 0 {
		t.Fatal("unexpected packets")
	}
}

// A device that sends nothing for 1.5 keepalives is disconnected and
// reported offline, also when it stops in the middle of a packet.
func TestFrontKeepalive(t *testing.T) {
	for _, partial := range []bool{false, true} {
		t.Run("partial="+strconv.FormatBool(partial), func(t *testing.T) { testKeepalive(t, partial) })
	}
}

func testKeepalive(t *testing.T, partial bool) {
	frontModes(t, func(t *testing.T, wrap func(net.Listener) net.Listener) {
		auth := newAuthority()
		a := auth.device(1)
		b := startBroker(t, Config{Authority: auth, WrapListener: wrap})
		conn, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		dev := &rawClient{conn: conn, r: bufio.NewReader(conn), version: 4}
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
			Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: clientID(a), Clean: true, Keepalive: 1,
				UsernameFlag: true, Username: []byte(user(a)), PasswordFlag: true, Password: []byte(auth.password(a))}}
		if err := dev.send(pk); err != nil {
			t.Fatal(err)
		}
		expectPacket(t, dev, packets.Connack, 0)
		dev.subscribe(t, 2, ControlTopic(a))
		testwait.For(t, "online", func() bool { return b.Online(a) })
		start := time.Now()
		if partial {
			if _, err := conn.Write([]byte{0x30, 0x10, 0x00}); err != nil {
				t.Fatal(err)
			}
		}
		var ne net.Error
		if _, err := dev.read(5 * time.Second); err == nil || errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("read: %v, want the connection closed", err)
		}
		if d := time.Since(start); d < time.Second || d > 4*time.Second {
			t.Fatalf("closed after %s, want about 1.5 s", d)
		}
		testwait.For(t, "offline", func() bool { return !b.Online(a) })
	})
}

// A retained message reaches a device that subscribes at QoS 0 (mochi
// would drop it for a client without a connection).
func TestFrontRetainedQoS0(t *testing.T) {
	auth := newAuthority()
	a := auth.device(1)
	auth.allow([]string{"state"}, nil)
	b := startBroker(t, Config{Authority: auth, AllowAnonymous: true})
	pub := mustDial(t, b.Addr(), rawConnect{version: 4, clientID: "pub", clean: true})
	if err := pub.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true},
		TopicName: "state", Payload: []byte("kept")}); err != nil {
		t.Fatal(err)
	}
	pub.roundTrip(t)
	dev := mustDial(t, b.Addr(), rawConnect{version: 4, clientID: clientID(a), user: user(a), pass: auth.password(a), clean: true})
	dev.subscribe(t, 0, "state")
	pk := readPublish(t, dev)
	if string(pk.Payload) != "kept" || !pk.FixedHeader.Retain || pk.FixedHeader.Qos != 0 {
		t.Fatalf("got %q retain %v qos %d", pk.Payload, pk.FixedHeader.Retain, pk.FixedHeader.Qos)
	}
}

// A device that keeps taking its own session over while the C2 publishes
// gets every message, first occurrences in order.
func TestFrontTakeoverStress(t *testing.T) {
	frontModes(t, func(t *testing.T, wrap func(net.Listener) net.Listener) {
		auth := newAuthority()
		a := auth.device(1)
		b := startBroker(t, Config{Authority: auth, WrapListener: wrap})
		rc := rawConnect{version: 4, clientID: clientID(a), user: user(a), pass: auth.password(a)}
		first := mustDial(t, b.Addr(), rc)
		first.subscribe(t, 2, ControlTopic(a))
		const n = 300
		var mu sync.Mutex
		var got []string
		record := func(pk packets.Packet) {
			mu.Lock()
			got = append(got, string(pk.Payload))
			mu.Unlock()
		}
		go first.serveQoS2(record)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range n {
				if err := b.Publish(ControlTopic(a), []byte(strconv.Itoa(i))); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
		for range 10 {
			time.Sleep(3 * time.Millisecond)
			c, _, err := dialRaw(t, b.Addr(), rc)
			if err != nil {
				t.Fatal(err)
			}
			go c.serveQoS2(record)
		}
		<-done
		testwait.For(t, "all messages", func() bool {
			mu.Lock()
			defer mu.Unlock()
			seen := map[string]bool{}
			for _, m := range got {
				seen[m] = true
			}
			return len(seen) == n
		})
		mu.Lock()
		defer mu.Unlock()
		next := 0
		seen := map[string]bool{}
		for _, m := range got {
			if seen[m] {
				continue // a resend of an unacknowledged message
			}
			seen[m] = true
			if m != strconv.Itoa(next) {
				t.Fatalf("message %q arrived first where %d was due", m, next)
			}
			next++
		}
	})
}

// Clean sessions of one device replacing each other while the C2
// publishes: the last one stays subscribed and online, and its Deliver is
// confirmed (a clean session ending never removes its successor's
// subscription).
func TestFrontCleanTakeoverStress(t *testing.T) {
	frontModes(t, func(t *testing.T, wrap func(net.Listener) net.Listener) {
		auth := newAuthority()
		a := auth.device(1)
		b := startBroker(t, Config{Authority: auth, WrapListener: wrap})
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = b.Publish(ControlTopic(a), []byte("x"))
			}
		}()
		var codes []byte
		for range 20 {
			rc := mustDial(t, b.Addr(), rawConnect{version: 4, clientID: clientID(a), user: user(a), pass: auth.password(a), clean: true})
			codes = rc.subscribe(t, 2, ControlTopic(a))
			go rc.serveQoS2(nil)
		}
		close(stop)
		deadline := time.Now().Add(5 * time.Second)
		for !(b.Online(a) && b.frontSessions() == 1) {
			if time.Now().After(deadline) {
				t.Fatalf("online %v, %d sessions, %d in the poller, last SUBACK %v", b.Online(a), b.frontSessions(), b.pollerSize(), codes)
			}
			time.Sleep(10 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := b.Deliver(ctx, a, []byte("last")); err != nil {
			t.Fatal(err)
		}
	})
}

// Random bytes after a device's CONNECT (and random bytes that look like
// packets of each type) never take the broker down.
func TestFrontRandomInput(t *testing.T) {
	frontModes(t, func(t *testing.T, wrap func(net.Listener) net.Listener) {
		auth := newAuthority()
		a := auth.device(1)
		auth.allow([]string{"t"}, []string{"t"})
		b := startBroker(t, Config{Authority: auth, MaxPacketSize: 4096, WrapListener: wrap})
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range 200 {
			dev := mustDial(t, b.Addr(), rawConnect{version: 4, clientID: clientID(a), user: user(a), pass: auth.password(a), clean: i%2 == 0})
			junk := make([]byte, 2+rng.IntN(80))
			for j := range junk {
				junk[j] = byte(rng.Uint32())
			}
			junk[0] = byte(rng.IntN(16))<<4 | junk[0]&0x0f
			junk[1] = byte(len(junk) - 2)
			_, _ = dev.conn.Write(junk)
			_ = dev.conn.Close()
		}
		dev := deviceSubscribed(t, b, auth, a, 2)
		dev.roundTrip(t)
		go dev.serveQoS2(nil)
		testwait.For(t, "online", func() bool { return b.Online(a) })
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := b.Deliver(ctx, a, []byte("still here")); err != nil {
			t.Fatal(err)
		}
		if wrap == nil {
			testwait.For(t, "one session in the poller", func() bool { return b.pollerSize() == 1 })
		}
	})
}

// pollerSize returns the number of sessions in the front end's poller.
func (b *Broker) pollerSize() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.front == nil || b.front.poll == nil {
		return 0
	}
	return b.front.poll.size()
}

// With debug logging, a delivery to a front-end device logs no line of
// mochi's (its "failed publishing packet": queued for a client without a
// connection, with the packet).
func TestFrontDeliveryNotLogged(t *testing.T) {
	var buf syncBuffer
	auth := newAuthority()
	a := auth.device(1)
	b, err := New(Config{Address: "127.0.0.1:0", Authority: auth,
		Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dev := deviceSubscribed(t, b, auth, a, 2)
	go dev.serveQoS2(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := b.Deliver(ctx, a, []byte("secret-ish")); err != nil {
		t.Fatal(err)
	}
	if s := buf.String(); strings.Contains(s, "failed publishing packet") || strings.Contains(s, "secret-ish") {
		t.Fatalf("delivery logged:\n%s", s)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// BackupSessions copies the front end's device sessions (they live in
// mochi's store): a restore brings the queued command back.
func TestFrontBackupSessions(t *testing.T) {
	auth := newAuthority()
	a := auth.device(1)
	dir := t.TempDir()
	addr := freeAddr(t)
	b := startBroker(t, Config{Address: addr, Authority: auth, PersistPath: filepath.Join(dir, "b.db")})
	rc := rawConnect{version: 4, clientID: clientID(a), user: user(a), pass: auth.password(a)}
	dev := mustDial(t, addr, rc)
	dev.subscribe(t, 2, ControlTopic(a))
	dev.conn.Close()
	testwait.For(t, "offline", func() bool { return b.frontSessions() == 0 })
	if err := b.Publish(ControlTopic(a), []byte("queued")); err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(dir, "copy.db")
	err := b.BackupSessions(func(_ int64, w io.WriterTo) error {
		f, err := os.Create(copyPath)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = w.WriteTo(f)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := storeCounts(t, copyPath); got["CL"] != 1 || got["SUB"] != 1 || got["IFM"] != 1 {
		t.Fatalf("backup holds %v, want the device's session", got)
	}
	startBroker(t, Config{Address: addr, Authority: auth, PersistPath: copyPath})
	dev, ack, err := dialRaw(t, addr, rc)
	if err != nil || !ack.SessionPresent {
		t.Fatalf("reconnect on the restored file: %v, session present %v", err, ack.SessionPresent)
	}
	if pk := readPublish(t, dev); string(pk.Payload) != "queued" {
		t.Fatalf("got %q", pk.Payload)
	}
}

// An offline device's session holds at most MaxQueuedPerClient messages.
func TestFrontQueueBound(t *testing.T) {
	auth := newAuthority()
	a := auth.device(1)
	b := startBroker(t, Config{Authority: auth, MaxQueuedPerClient: 5})
	rc := rawConnect{version: 4, clientID: clientID(a), user: user(a), pass: auth.password(a)}
	dev := mustDial(t, b.Addr(), rc)
	dev.subscribe(t, 2, ControlTopic(a))
	dev.conn.Close()
	testwait.For(t, "offline", func() bool { return b.frontSessions() == 0 })
	for i := range 8 {
		if err := b.Publish(ControlTopic(a), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	dev = mustDial(t, b.Addr(), rc)
	var got []string
	for _, pk := range dev.roundTrip(t) {
		got = append(got, string(pk.Payload))
	}
	if len(got) != 5 || got[0] != "0" || got[4] != "4" {
		t.Fatalf("resent %v, want the first 5", got)
	}
}

// The keepalive sweep never ends a session that is just being
// established (found by the memory benchmark: a session registered
// before its first activity stamp looked idle since 1970).
func TestFrontSweepSparesNewSessions(t *testing.T) {
	old := sweepEvery
	sweepEvery = time.Millisecond
	t.Cleanup(func() { sweepEvery = old })
	auth := newAuthority()
	b := startBroker(t, Config{Authority: auth})
	const n = 200
	conns := make([]*rawClient, n)
	for i := range n {
		a := auth.device(i)
		conns[i] = mustDial(t, b.Addr(), rawConnect{version: 4, clientID: clientID(a), user: user(a), pass: auth.password(a), clean: true})
	}
	time.Sleep(50 * time.Millisecond)
	for i, rc := range conns {
		if other := rc.roundTrip(t); len(other) != 0 {
			t.Fatalf("device %d: unexpected packets", i)
		}
	}
	if got := b.frontSessions(); got != n {
		t.Fatalf("%d sessions, want %d", got, n)
	}
}
