package mqtt

import (
	"bytes"
	"encoding/hex"
	"strings"

	"github.com/e4c2/e4c2/suites/core"
)

// SubscribeLogTopic is where mosquitto publishes its subscription log when
// configured with "log_dest topic" and "log_type subscribe": one message
// per SUBSCRIBE topic, "<time>: <client id> <qos> <topic filter>".
const SubscribeLogTopic = "$SYS/broker/log/M/subscribe"

// ParseSubscribeLog reads one message of SubscribeLogTopic and reports the
// device that subscribed to its own control topic: client id = the
// lower-case hex of a 16-byte id and topic = e4/<that id>. That is a
// sighting only on a listener with "use_username_as_clientid true" (what
// e4c2 broker-config writes): the client id is then the authenticated
// username, not a name any client may claim. Anything else is not a
// sighting.
func ParseSubscribeLog(payload []byte) (id [16]byte, ok bool) {
	_, rest, found := bytes.Cut(payload, []byte(": "))
	if !found {
		return id, false
	}
	fields := strings.Fields(string(rest))
	if len(fields) != 3 || len(fields[0]) != 32 || fields[0] != strings.ToLower(fields[0]) {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(fields[0])); err != nil {
		return [16]byte{}, false
	}
	if (fields[1] != "1" && fields[1] != "2") || fields[2] != core.ControlTopic(id[:]) {
		// QoS 0 would lose commands on the way: not a device that can
		// take them.
		return [16]byte{}, false
	}
	return id, true
}
