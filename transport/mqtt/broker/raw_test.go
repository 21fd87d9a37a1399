package broker

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// rawClient is a hand-driven MQTT client: it sends exactly the packets a
// test asks for, so a test can leave a QoS 2 exchange half done.
type rawClient struct {
	conn    net.Conn
	r       *bufio.Reader
	version byte
}

type rawConnect struct {
	version  byte // 4 (3.1.1) or 5
	clientID string
	user     string
	pass     string
	clean    bool
	will     string // will topic, if any
	expiry   uint32 // MQTT 5 session expiry interval when not clean (default 3600 s)
}

// dialRaw connects and returns the client and the CONNACK.
func dialRaw(t testing.TB, addr string, c rawConnect) (*rawClient, packets.Packet, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return nil, packets.Packet{}, fmt.Errorf("dial: %w", err)
	}
	rc := &rawClient{conn: conn, r: bufio.NewReader(conn), version: c.version}
	t.Cleanup(func() { conn.Close() })
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: c.version,
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), ClientIdentifier: c.clientID, Clean: c.clean, Keepalive: 60,
		},
	}
	if c.version == 5 && !c.clean {
		pk.Properties.SessionExpiryInterval = 3600
		if c.expiry > 0 {
			pk.Properties.SessionExpiryInterval = c.expiry
		}
		pk.Properties.SessionExpiryIntervalFlag = true
	}
	if c.user != "" {
		pk.Connect.UsernameFlag, pk.Connect.Username = true, []byte(c.user)
	}
	if c.pass != "" {
		pk.Connect.PasswordFlag, pk.Connect.Password = true, []byte(c.pass)
	}
	if c.will != "" {
		pk.Connect.WillFlag, pk.Connect.WillTopic, pk.Connect.WillPayload = true, c.will, []byte("will")
	}
	if err := rc.send(pk); err != nil {
		return nil, packets.Packet{}, err
	}
	ack, err := rc.read(3 * time.Second)
	if err != nil {
		return nil, ack, fmt.Errorf("read connack: %w", err)
	}
	if ack.FixedHeader.Type != packets.Connack {
		return nil, ack, fmt.Errorf("got packet type %d, want CONNACK", ack.FixedHeader.Type)
	}
	return rc, ack, nil
}

// mustDial connects and fails the test unless the broker accepts.
// deviceSubscribed connects device a of auth to b (MQTT 3.1.1, clean
// session) and subscribes it to its control topic at qos.
func deviceSubscribed(t testing.TB, b *Broker, auth *testAuthority, a [16]byte, qos byte) *rawClient {
	t.Helper()
	rc := mustDial(t, b.Addr(), rawConnect{version: 4, clientID: clientID(a), user: user(a), pass: auth.password(a), clean: true})
	rc.subscribe(t, qos, ControlTopic(a))
	return rc
}

func mustDial(t testing.TB, addr string, c rawConnect) *rawClient {
	t.Helper()
	rc, ack, err := dialRaw(t, addr, c)
	if err != nil {
		t.Fatal(err)
	}
	if ack.ReasonCode != 0 {
		t.Fatalf("CONNACK code %#x for %q", ack.ReasonCode, c.clientID)
	}
	return rc
}

func (c *rawClient) send(pk packets.Packet) error {
	pk.ProtocolVersion = c.version
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(&buf)
	case packets.Subscribe:
		err = pk.SubscribeEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	case packets.Puback:
		err = pk.PubackEncode(&buf)
	case packets.Pubrec:
		err = pk.PubrecEncode(&buf)
	case packets.Pubrel:
		err = pk.PubrelEncode(&buf)
	case packets.Pubcomp:
		err = pk.PubcompEncode(&buf)
	case packets.Disconnect:
		err = pk.DisconnectEncode(&buf)
	case packets.Pingreq:
		err = pk.PingreqEncode(&buf)
	default:
		err = fmt.Errorf("rawClient cannot send type %d", pk.FixedHeader.Type)
	}
	if err != nil {
		return err
	}
	_, err = c.conn.Write(buf.Bytes())
	return err
}

// read reads one packet, waiting at most d.
func (c *rawClient) read(d time.Duration) (packets.Packet, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	var pk packets.Packet
	b, err := c.r.ReadByte()
	if err != nil {
		return pk, err
	}
	if err := pk.FixedHeader.Decode(b); err != nil {
		return pk, err
	}
	n, _, err := packets.DecodeLength(c.r)
	if err != nil {
		return pk, err
	}
	pk.FixedHeader.Remaining = n
	body := make([]byte, n)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return pk, err
	}
	pk.ProtocolVersion = c.version
	switch pk.FixedHeader.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Suback:
		err = pk.SubackDecode(body)
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
	case packets.Disconnect:
		err = pk.DisconnectDecode(body)
	}
	return pk, err
}

// subscribe subscribes to filters (all at qos) and returns the SUBACK codes.
func (c *rawClient) subscribe(t testing.TB, qos byte, filters ...string) []byte {
	t.Helper()
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: 1}
	for _, f := range filters {
		pk.Filters = append(pk.Filters, packets.Subscription{Filter: f, Qos: qos})
	}
	if err := c.send(pk); err != nil {
		t.Fatal(err)
	}
	for {
		ack, err := c.read(3 * time.Second)
		if err != nil {
			t.Fatalf("read suback: %v", err)
		}
		if ack.FixedHeader.Type == packets.Suback {
			return ack.ReasonCodes
		}
	}
}

// ack sends an acknowledgement of type typ for packet id.
func (c *rawClient) ack(typ byte, id uint16) error {
	fh := packets.FixedHeader{Type: typ}
	if typ == packets.Pubrel {
		fh.Qos = 1
	}
	return c.send(packets.Packet{FixedHeader: fh, PacketID: id})
}

// serveQoS2 answers every QoS 2 PUBLISH with PUBREC and every PUBREL with
// PUBCOMP, handing each message to got, until the connection ends.
func (c *rawClient) serveQoS2(got func(packets.Packet)) {
	for {
		pk, err := c.read(time.Hour)
		if err != nil {
			return
		}
		switch pk.FixedHeader.Type {
		case packets.Publish:
			if got != nil {
				got(pk)
			}
			switch pk.FixedHeader.Qos {
			case 1:
				_ = c.ack(packets.Puback, pk.PacketID)
			case 2:
				_ = c.ack(packets.Pubrec, pk.PacketID)
			}
		case packets.Pubrel:
			_ = c.ack(packets.Pubcomp, pk.PacketID)
		}
	}
}

// roundTrip sends PINGREQ and reads up to its PINGRESP: the broker
// processes a connection's packets in order, so everything sent before has
// been handled. Other packets read meanwhile are returned.
func (c *rawClient) roundTrip(t testing.TB) []packets.Packet {
	t.Helper()
	if err := c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}}); err != nil {
		t.Fatal(err)
	}
	var other []packets.Packet
	for {
		pk, err := c.read(3 * time.Second)
		if err != nil {
			t.Fatalf("waiting for PINGRESP: %v", err)
		}
		if pk.FixedHeader.Type == packets.Pingresp {
			return other
		}
		other = append(other, pk)
	}
}
