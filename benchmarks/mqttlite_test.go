package benchmarks

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// TestLiteQoS2 runs the minimal client against a scripted broker: the
// QoS 2 flow must deliver once, answer PUBREC then PUBCOMP, and drop a
// duplicate received before PUBREL.
func TestLiteQoS2(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 4)
	brokerErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			brokerErr <- err
			return
		}
		defer c.Close()
		b := &liteConn{c: c, r: newReader(c)}
		expect := func(typ byte) []byte {
			tp, pl, err := b.read()
			if err != nil || tp>>4 != typ {
				t.Errorf("broker: got packet %#x err %v, want type %d", tp, err, typ)
			}
			return pl
		}
		conn := expect(1) // CONNECT: flags, then client id, username, password
		want := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0xc2, 0, 0}
		want = appendString(want, "e4dev-abc")
		want = appendString(want, "abc")
		want = appendString(want, "pw")
		if !bytes.Equal(conn, want) {
			t.Errorf("connect %q, want %q", conn, want)
		}
		_ = b.write(0x20, []byte{0, 0})
		sub := expect(8)
		_ = b.write(0x90, []byte{sub[0], sub[1], 2})
		pub := appendString(nil, "e4/abc")
		pub = append(pub, 0, 7)
		pub = append(pub, "command"...)
		_ = b.write(0x34, pub)                               // QoS 2
		if pl := expect(5); !bytes.Equal(pl, []byte{0, 7}) { // PUBREC
			t.Errorf("pubrec %x", pl)
		}
		_ = b.write(0x3c, pub) // duplicate (DUP flag) before PUBREL
		expect(5)
		_ = b.write(0x62, []byte{0, 7})
		if pl := expect(7); !bytes.Equal(pl, []byte{0, 7}) { // PUBCOMP
			t.Errorf("pubcomp %x", pl)
		}
		brokerErr <- nil
	}()
	lc, err := liteDial(ln.Addr().String(), liteAuth{ClientID: "e4dev-abc", Username: "abc", Password: "pw"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	if err := lc.Subscribe("e4/abc", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	go func() { _ = lc.Serve(func(topic string, p []byte) { got <- append([]byte(topic+":"), p...) }) }()
	if err := <-brokerErr; err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if string(m) != "e4/abc:command" {
			t.Fatalf("delivered %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing delivered")
	}
	select {
	case m := <-got:
		t.Fatalf("duplicate delivered: %q", m)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestLiteRejectsOversize(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	lc := &liteConn{c: a, r: newReader(a)}
	go func() { _, _ = b.Write([]byte{0x30, 0xff, 0xff, 0xff, 0x7f}) }()
	if _, _, err := lc.read(); err == nil {
		t.Fatal("accepted a 256 MiB packet")
	}
}
