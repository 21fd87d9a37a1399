package broker

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/e4c2/e4c2/client/credential"
)

// ControlPrefix is the first level of every E4 control topic. "e4/#" also
// matches "e4" itself, so both are reserved.
const ControlPrefix = "e4"

// IsControlTopic reports whether topic is under "e4/#" (including "e4").
func IsControlTopic(topic string) bool {
	return topic == ControlPrefix || strings.HasPrefix(topic, ControlPrefix+"/")
}

// ControlTopic returns the control topic of device id: "e4/" and the
// lower-case hex of the id.
func ControlTopic(id [16]byte) string {
	return ControlPrefix + "/" + credential.Username(id[:])
}

// Authority is what the broker asks the C2 about devices. Implementations
// must be safe for concurrent use and fast (called on every
// CONNECT/SUBSCRIBE/PUBLISH).
type Authority interface {
	// Authenticate checks a device's CONNECT username and password; it
	// returns the device's id when the credential is valid for a
	// registered device.
	Authenticate(username string, password []byte) (id [16]byte, ok bool)
	// MaySubscribe reports whether device id may subscribe to the exact
	// topic name (never a wildcard, never a control topic: the broker
	// decides those).
	MaySubscribe(id [16]byte, topic string) bool
	// MayPublish reports whether device id may publish on topic (never a
	// control topic).
	MayPublish(id [16]byte, topic string) bool
}

// Credentials are a username and password.
type Credentials struct {
	Username string
	Password string
}

// role is what a client is to the ACL. It is derived from the client's
// username and id alone (see authHook.classify), which the CONNECT check
// made trustworthy: a client carrying a role's username got past that
// role's authentication. Deriving it instead of remembering it keeps the
// ACL right for sessions mochi reloads from the persistence file.
type role uint8

const (
	roleNone      role = iota // must not be connected: no rights
	roleAnonymous             // no credentials
	roleUser                  // a static Config.Users entry
	roleDevice                // an E4 device authenticated by the Authority
	roleC2                    // the C2 (credentials or in process)
)

// authHook authenticates connections and enforces the topic ACL.
type authHook struct {
	mqtt.HookBase
	c2        *Credentials      // privileged publisher on e4/#; nil: in-process only
	users     map[string][]byte // username -> sha256(password)
	authority Authority         // nil: devices cannot connect
	anonymous bool              // legacy: anonymous clients get user rights
	anonRead  map[string]bool   // exact topics anonymous clients may read
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

// classify returns the role of a connected (or reloaded) client, and the
// device id for a device.
func (h *authHook) classify(cl *mqtt.Client) (role, [16]byte) {
	var id [16]byte
	if cl.Net.Inline {
		return roleC2, id
	}
	user := cl.Properties.Username
	if h.c2 != nil && string(user) == h.c2.Username {
		return roleC2, id
	}
	if d, ok := credential.ParseUsername(string(user)); ok {
		// cl.ID == credential.ClientID(d), without building the string:
		// classify runs on every ACL check and device hook.
		p := len(credential.ClientIDPrefix)
		if h.authority == nil || len(cl.ID) != p+len(user) ||
			cl.ID[:p] != credential.ClientIDPrefix || cl.ID[p:] != string(user) {
			return roleNone, id
		}
		return roleDevice, d
	}
	if _, ok := h.users[string(user)]; ok && len(user) > 0 {
		return roleUser, id
	}
	if len(user) > 0 && len(h.users) > 0 {
		return roleNone, id // an unknown user name was refused at CONNECT
	}
	return roleAnonymous, id
}

// OnConnectAuthenticate decides who may connect.
//
// A username that parses as a device id makes the client a device, whatever
// else is configured: it must use the device's client id and pass the
// Authority, so nobody can log in as a device through another door (static
// users, anonymous access). Client ids with the device prefix are reserved
// to their device for the same reason: the id is what selects a persistent
// session, and with it the device's queued commands and subscriptions. The
// C2's username must come with its password even when anonymous clients are
// allowed: the username is what grants the privilege. A will is checked like
// a publish: mochi sends it without an ACL check.
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	cid := cl.ID
	var r role
	var id [16]byte
	switch {
	case h.c2 != nil && user == h.c2.Username:
		if !passwordOK(digest(h.c2.Password), pk.Connect.Password) {
			return false
		}
		r = roleC2
	default:
		if d, ok := credential.ParseUsername(user); ok {
			if h.authority == nil || cid != credential.ClientID(d[:]) {
				return false
			}
			got, ok := h.authority.Authenticate(user, pk.Connect.Password)
			if !ok || got != d {
				return false
			}
			r, id = roleDevice, d
			break
		}
		if want, ok := h.users[user]; ok && user != "" {
			if !passwordOK(want, pk.Connect.Password) {
				return false
			}
			r = roleUser
			break
		}
		if user != "" && len(h.users) > 0 {
			return false
		}
		if !h.anonymous && len(h.anonRead) == 0 {
			return false
		}
		r = roleAnonymous
	}
	if strings.HasPrefix(cid, credential.ClientIDPrefix) && (r != roleDevice || cid != credential.ClientID(id[:])) {
		return false
	}
	if cid == mqtt.InlineClientId {
		return false // would take the in-process client's place in mochi's table
	}
	if pk.Connect.WillFlag && !h.mayWrite(r, id, pk.Connect.WillTopic) {
		return false
	}
	return true
}

// hasWildcard reports whether a filter has MQTT wildcards.
func hasWildcard(filter string) bool {
	return strings.ContainsAny(filter, "+#")
}

// mayWrite is the publish ACL. An empty topic is an MQTT 5 alias that
// OnPublish checks once resolved.
func (h *authHook) mayWrite(r role, id [16]byte, topic string) bool {
	switch r {
	case roleC2:
		return true
	case roleDevice:
		if topic == "" {
			return true
		}
		return !IsControlTopic(topic) && !hasWildcard(topic) && h.authority.MayPublish(id, topic)
	case roleUser:
		return !IsControlTopic(topic)
	case roleAnonymous:
		return h.anonymous && !IsControlTopic(topic)
	}
	return false
}

// mayRead is the subscribe ACL (topic is then a filter) and the delivery
// ACL (topic is then the message's topic name): mochi asks both. The
// delivery check is what keeps control topics from a wildcard subscriber
// such as a legacy anonymous client on "#".
func (h *authHook) mayRead(r role, id [16]byte, topic string) bool {
	switch r {
	case roleC2:
		return true
	case roleDevice:
		if topic == ControlTopic(id) {
			return true
		}
		if IsControlTopic(topic) || hasWildcard(topic) || strings.HasPrefix(topic, "$") {
			return false
		}
		return h.authority.MaySubscribe(id, topic)
	case roleUser:
		return !IsControlTopic(topic)
	case roleAnonymous:
		if h.anonRead[topic] {
			return true
		}
		return h.anonymous && !IsControlTopic(topic)
	}
	return false
}

// OnACLCheck applies mayRead or mayWrite to the client's role.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	r, id := h.classify(cl)
	if write {
		return h.mayWrite(r, id, topic)
	}
	return h.mayRead(r, id, topic)
}

// OnPublish checks again after topic-alias resolution (mochi runs the ACL
// check on the topic name as sent, before an MQTT 5 alias is resolved).
func (h *authHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	r, id := h.classify(cl)
	if pk.TopicName == "" || !h.mayWrite(r, id, pk.TopicName) {
		return pk, packets.ErrRejectPacket
	}
	return pk, nil
}

// parseControlTopic returns the device id of a device's control topic.
func parseControlTopic(topic string) ([16]byte, bool) {
	if !strings.HasPrefix(topic, ControlPrefix+"/") {
		return [16]byte{}, false
	}
	return credential.ParseUsername(topic[len(ControlPrefix)+1:])
}
