package benchmarks

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// liteConn is a minimal MQTT 3.1.1 subscriber: CONNECT, SUBSCRIBE with QoS 2,
// then receive PUBLISH at QoS 0, 1 or 2 (PUBACK; PUBREC, PUBREL, PUBCOMP).
// One goroutine reads and answers; nothing else writes after Subscribe, so
// writes need no lock. Keep-alive is off (0): the benchmark's connections
// live a few minutes on loopback.
type liteConn struct {
	c   net.Conn
	r   *bufio.Reader
	wmu sync.Mutex // Serve's acks and Close's DISCONNECT share wb and the conn
	wb  []byte
}

// errProtocol is a malformed or unexpected packet from the broker.
var errProtocol = errors.New("mqtt: protocol error")

// maxPacket bounds what the device accepts (commands are a few KiB; pq
// SetPubKey is the largest at about 6.4 KiB).
const maxPacket = 1 << 20

// liteAuth is what a device presents in its CONNECT: the client id, and
// the username and password the authenticating broker checks (both empty:
// anonymous, what a broker without device credentials accepts).
type liteAuth struct {
	ClientID, Username, Password string
}

// liteDial connects and sends CONNECT with a's credentials. A refused
// CONNECT (bad credentials: return code 4 or 5) is an error naming the
// code, never the password.
func liteDial(addr string, a liteAuth, timeout time.Duration) (*liteConn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("dial broker: %w", err)
	}
	lc := &liteConn{c: c, r: newReader(c)}
	_ = c.SetDeadline(time.Now().Add(timeout))
	// CONNECT: protocol "MQTT" level 4, clean session, keep-alive 0, and
	// the username (0x80) and password (0x40) flags when set.
	flags := byte(0x02)
	if a.Username != "" {
		flags |= 0x80
		if a.Password != "" {
			flags |= 0x40
		}
	}
	var body []byte
	body = appendString(body, "MQTT")
	body = append(body, 4, flags, 0, 0)
	body = appendString(body, a.ClientID)
	if flags&0x80 != 0 {
		body = appendString(body, a.Username)
	}
	if flags&0x40 != 0 {
		body = appendString(body, a.Password)
	}
	if err := lc.write(0x10, body); err != nil {
		c.Close()
		return nil, err
	}
	typ, pl, err := lc.read()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("connack: %w", err)
	}
	if typ>>4 != 2 || len(pl) != 2 || pl[1] != 0 {
		c.Close()
		return nil, fmt.Errorf("%w: connect refused (packet %#x, return code %x)", errProtocol, typ, pl)
	}
	return lc, nil
}

// Subscribe subscribes to topic with QoS 2 and waits for the SUBACK.
func (lc *liteConn) Subscribe(topic string, timeout time.Duration) error {
	_ = lc.c.SetDeadline(time.Now().Add(timeout))
	body := []byte{0, 1}
	body = appendString(body, topic)
	body = append(body, 2)
	if err := lc.write(0x82, body); err != nil {
		return err
	}
	typ, pl, err := lc.read()
	if err != nil {
		return fmt.Errorf("suback: %w", err)
	}
	if typ>>4 != 9 || len(pl) != 3 || pl[2] > 2 {
		return fmt.Errorf("%w: subscribe refused (packet %#x, %x)", errProtocol, typ, pl)
	}
	return lc.c.SetDeadline(time.Time{})
}

// Serve reads packets until the connection ends, calling onPublish for
// every new application message (QoS 2 duplicates are dropped until their
// PUBREL, as the exactly-once flow requires).
func (lc *liteConn) Serve(onPublish func(topic string, payload []byte)) error {
	inflight := map[uint16]bool{}
	for {
		typ, pl, err := lc.read()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		switch typ >> 4 {
		case 3: // PUBLISH
			qos := (typ >> 1) & 3
			if len(pl) < 2 {
				return fmt.Errorf("%w: short publish", errProtocol)
			}
			tl := int(binary.BigEndian.Uint16(pl))
			if len(pl) < 2+tl {
				return fmt.Errorf("%w: short publish topic", errProtocol)
			}
			topic, rest := string(pl[2:2+tl]), pl[2+tl:]
			var pid uint16
			if qos > 0 {
				if len(rest) < 2 {
					return fmt.Errorf("%w: publish without packet id", errProtocol)
				}
				pid, rest = binary.BigEndian.Uint16(rest), rest[2:]
			}
			switch qos {
			case 0:
				onPublish(topic, rest)
			case 1:
				onPublish(topic, rest)
				err = lc.write(0x40, []byte{byte(pid >> 8), byte(pid)})
			case 2:
				if !inflight[pid] {
					inflight[pid] = true
					onPublish(topic, rest)
				}
				err = lc.write(0x50, []byte{byte(pid >> 8), byte(pid)})
			default:
				return fmt.Errorf("%w: publish qos 3", errProtocol)
			}
		case 6: // PUBREL
			if len(pl) != 2 {
				return fmt.Errorf("%w: pubrel length", errProtocol)
			}
			delete(inflight, binary.BigEndian.Uint16(pl))
			err = lc.write(0x70, pl)
		case 13: // PINGRESP
		default:
			return fmt.Errorf("%w: unexpected packet type %d", errProtocol, typ>>4)
		}
		if err != nil {
			return err
		}
	}
}

// Close closes the connection (DISCONNECT first, best effort).
func (lc *liteConn) Close() error {
	_ = lc.c.SetWriteDeadline(time.Now().Add(time.Second))
	_ = lc.write(0xe0, nil)
	return lc.c.Close()
}

func (lc *liteConn) write(header byte, body []byte) error {
	lc.wmu.Lock()
	defer lc.wmu.Unlock()
	b := append(lc.wb[:0], header)
	b = appendVarint(b, len(body))
	b = append(b, body...)
	lc.wb = b
	if _, err := lc.c.Write(b); err != nil {
		return fmt.Errorf("mqtt write: %w", err)
	}
	return nil
}

// read returns one packet's first byte and its body. The body is a fresh
// slice: the device library keeps no reference, but callers may.
func (lc *liteConn) read() (byte, []byte, error) {
	typ, err := lc.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for i := 0; ; i++ {
		if i == 4 {
			return 0, nil, fmt.Errorf("%w: remaining length too long", errProtocol)
		}
		b, err := lc.r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(b&0x7f) * mul
		mul *= 128
		if b&0x80 == 0 {
			break
		}
	}
	if n > maxPacket {
		return 0, nil, fmt.Errorf("%w: packet of %d bytes", errProtocol, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(lc.r, body); err != nil {
		return 0, nil, err
	}
	return typ, body, nil
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 2048) }

func appendString(b []byte, s string) []byte {
	b = append(b, byte(len(s)>>8), byte(len(s)))
	return append(b, s...)
}

func appendVarint(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}
