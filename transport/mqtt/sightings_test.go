package mqtt

import "testing"

func TestParseSubscribeLog(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		line string
		ok   bool
	}{
		{"1796418236: " + id + " 2 e4/" + id, true}, // as mosquitto 2.0.11 writes it
		{"1796418236: " + id + " 1 e4/" + id, true},
		{"1796418236: " + id + " 0 e4/" + id, false},                       // QoS 0 loses commands
		{"1796418236: " + id + " 2 e4/" + id[:31] + "0", false},            // another device's topic
		{"1796418236: e4dev-" + id + " 2 e4/" + id, false},                 // a client id, not a username
		{"1796418236: 0123456789ABCDEF0123456789ABCDEF 2 e4/" + id, false}, // upper case: not a username
		{"1796418236: " + id + " 2 e4/" + id + " extra", false},            // topic with a space
		{"1796418236: " + id + " 2 e4/+", false},                           // a filter
		{"1796418236: mon 0 $SYS/broker/log/#", false},                     // the C2 itself
		{id + " 2 e4/" + id, false},                                        // no time prefix
		{"1796418236: zz23456789abcdef0123456789abcdef 2 e4/zz23456789abcdef0123456789abcdef", false},
	} {
		got, ok := ParseSubscribeLog([]byte(tc.line))
		if ok != tc.ok {
			t.Errorf("%q: ok = %v, want %v", tc.line, ok, tc.ok)
		}
		if ok && ControlTopic(got) != "e4/"+id {
			t.Errorf("%q: id %x", tc.line, got)
		}
	}
}
