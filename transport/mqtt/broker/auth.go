package broker

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// ControlPrefix is the first level of every E4 control topic. "e4/#" also
// matches "e4" itself, so both are reserved.
const ControlPrefix = "e4"

// IsControlTopic reports whether topic is under "e4/#" (including "e4").
func IsControlTopic(topic string) bool {
	return topic == ControlPrefix || strings.HasPrefix(topic, ControlPrefix+"/")
}

// Credentials are a username and password.
type Credentials struct {
	Username string
	Password string
}

// authHook authenticates connections and enforces the control-topic ACL.
type authHook struct {
	mqtt.HookBase
	c2        *Credentials      // privileged publisher on e4/#; nil: in-process only
	users     map[string][]byte // username -> sha256(password); nil: anonymous allowed
	anonymous bool
}

func digest(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}

// passwordOK compares in constant time; hashing first makes the comparison
// independent of the password length too.
func passwordOK(want []byte, got []byte) bool {
	d := sha256.Sum256(got)
	return subtle.ConstantTimeCompare(want, d[:]) == 1
}

func (h *authHook) ID() string { return "e4-auth" }

func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish}, []byte{b})
}

// OnConnectAuthenticate accepts the C2 with its credentials, devices with
// theirs, and anonymous clients only when allowed. A client that presents the
// C2's username must present its password even when anonymous clients are
// allowed: the username is what grants the privilege.
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	if h.c2 != nil && user == h.c2.Username {
		return passwordOK(digest(h.c2.Password), pk.Connect.Password)
	}
	if want, ok := h.users[user]; ok && user != "" {
		return passwordOK(want, pk.Connect.Password)
	}
	return h.anonymous
}

func (h *authHook) privileged(cl *mqtt.Client) bool {
	if cl.Net.Inline {
		return true
	}
	// The username was checked against the C2 password at connect time.
	return h.c2 != nil && string(cl.Properties.Username) == h.c2.Username
}

// OnACLCheck refuses writes on e4/# to anybody but the C2. Reads are free:
// control topics carry only protected commands.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if write && IsControlTopic(topic) {
		return h.privileged(cl)
	}
	return true
}

// OnPublish checks again after topic-alias resolution (mochi runs the ACL
// check on the topic name as sent, before an MQTT 5 alias is resolved).
func (h *authHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if IsControlTopic(pk.TopicName) && !h.privileged(cl) {
		return pk, packets.ErrRejectPacket
	}
	return pk, nil
}
