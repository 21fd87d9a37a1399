package broker

import (
	"bytes"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

// FuzzFrontDecode feeds the front end's decoding of network input (the
// CONNECT read on the accept path, the remaining length, the packets of a
// device session) arbitrary bytes: it must never panic, and never accept
// a CONNECT whose re-encoding mochi's decoder would refuse.
func FuzzFrontDecode(f *testing.F) {
	var buf bytes.Buffer
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: "e4dev-00", Keepalive: 60,
			UsernameFlag: true, Username: []byte("00112233445566778899aabbccddeeff"), PasswordFlag: true, Password: []byte("pw"),
			WillFlag: true, WillTopic: "w", WillPayload: []byte("x")}}
	if err := pk.ConnectEncode(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{0x82, 0x08, 0x00, 0x01, 0x00, 0x03, 'a', '/', 'b', 0x02})
	f.Add([]byte{0x62, 0x02, 0x00, 0x01})
	f.Add([]byte{0x10, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		raw, _, ok := readConnect(bytes.NewReader(data), 1<<12)
		if !bytes.HasPrefix(data, raw) {
			t.Fatalf("replay bytes %x are not a prefix of the input", raw)
		}
		if ok && len(raw) < 2 {
			t.Fatal("accepted a CONNECT without a body")
		}
		n, size, complete := remainingLength(data)
		if complete && (size < 1 || size > 4 || n < 0 || n > 268435455) {
			t.Fatalf("remaining length %d in %d bytes", n, size)
		}
		if len(data) > 0 {
			_, _ = decodePacket(data[0], data[1:])
		}
	})
}
