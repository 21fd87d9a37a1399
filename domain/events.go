package domain

import (
	"fmt"

	"github.com/e4c2/e4c2/suites/core"
)

// Type identifies an event kind in memory. It is never persisted: the log
// holds the wire name of the catalogue.
type Type uint8

// The event types.
const (
	TypeUnknown Type = iota
	TypeClientRegistered
	TypeClientRemoved
	TypeClientKeyRotated
	TypeClientTopicsReset
	TypeTopicCreated
	TypeTopicKeyRotated
	TypeTopicRemoved
	TypeTopicClientLinked
	TypeTopicClientUnlinked
	TypeC2KeyGenerated
	TypeCommandQueued
	TypeCommandDelivered
	TypeCommandFailed
	TypeTokenCreated
	TypeTokenRevoked
	TypeKeyExported
	TypeCommandConfirmed
	TypeDeviceSeen
	TypeKeyUsed
	TypeDeviceReleased
	TypeMonitorFinding
	numTypes
)

// catalogue is the one table mapping event types to their stable wire
// names. A wire name never changes once an event of it was written; a new
// shape gets a new name (".v2") and keeps the old decoder.
var catalogue = [numTypes]string{
	TypeClientRegistered:    "client.registered.v1",
	TypeClientRemoved:       "client.removed.v1",
	TypeClientKeyRotated:    "client.key_rotated.v1",
	TypeClientTopicsReset:   "client.topics_reset.v1",
	TypeTopicCreated:        "topic.created.v1",
	TypeTopicKeyRotated:     "topic.key_rotated.v1",
	TypeTopicRemoved:        "topic.removed.v1",
	TypeTopicClientLinked:   "topic.client_linked.v1",
	TypeTopicClientUnlinked: "topic.client_unlinked.v1",
	TypeC2KeyGenerated:      "c2key.generated.v1",
	TypeCommandQueued:       "command.queued.v1",
	TypeCommandDelivered:    "command.delivered.v1",
	TypeCommandFailed:       "command.failed.v1",
	TypeTokenCreated:        "token.created.v1",
	TypeTokenRevoked:        "token.revoked.v1",
	TypeKeyExported:         "key.exported.v1",
	TypeCommandConfirmed:    "command.confirmed.v1",
	TypeDeviceSeen:          "device.seen.v1",
	TypeKeyUsed:             "key.used.v1",
	TypeDeviceReleased:      "device.released.v1",
	TypeMonitorFinding:      "monitor.finding.v1",
}

var byWireName = func() map[string]Type {
	m := make(map[string]Type, numTypes)
	for t, n := range catalogue {
		if n != "" {
			m[n] = Type(t)
		}
	}
	return m
}()

// WireName returns the stable wire name of t ("" for an unknown type).
func (t Type) WireName() string {
	if t >= numTypes {
		return ""
	}
	return catalogue[t]
}

// String returns the wire name.
func (t Type) String() string { return t.WireName() }

// TypeOf returns the type of a wire name, or TypeUnknown.
func TypeOf(wireName string) Type { return byWireName[wireName] }

// WireNames returns every wire name of the catalogue, in type order.
func WireNames() []string {
	out := make([]string, 0, numTypes)
	for _, n := range catalogue {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// Event is a domain event. Events are plain data; their stored binary form
// (with secrets sealed) is internal/eventcodec's business, not this
// package's: domain decides, it does not know how a decision is stored.
type Event interface {
	// EventType returns the catalogue entry of the event.
	EventType() Type
}

// MaxSecretLen bounds a Secret and MaxBlobLen a public key in an event: far
// above any suite's sizes (ML-DSA-65 public keys are 1952 bytes), low enough
// that a corrupt length in a stored event cannot make a decoder allocate
// much. Decide refuses keys over them, so that every decided event can be
// stored and read back (the event codec applies the same bounds).
const (
	MaxSecretLen = 1 << 14
	MaxBlobLen   = 1 << 16
)

// Secret is key material inside an event. A freshly decided event holds it
// in clear (set by Decide from the key the caller passed in); the
// encoder seals it and a decoded event only holds the sealed bytes. Secret
// has no String method on purpose and fmt prints only its lengths.
type Secret struct {
	plain  []byte
	sealed []byte
}

// NewSecret wraps clear key material for encoding. It does not copy.
func NewSecret(plain []byte) Secret { return Secret{plain: plain} }

// SealedSecret wraps bytes sealed earlier.
func SealedSecret(sealed []byte) Secret { return Secret{sealed: sealed} }

// Sealed returns the sealed bytes (nil before encoding).
func (s Secret) Sealed() []byte { return s.sealed }

// SealWith returns the sealed form of s for the event codec: the bytes
// sealed earlier as they are (seal is not called), or what seal makes of
// the clear key. The codec lives outside this package (domain must not
// know how events are stored or sealed), and handing the clear bytes to a
// function instead of a getter keeps them from leaking into other uses.
func (s Secret) SealWith(seal func(plain []byte) ([]byte, error)) ([]byte, error) {
	if s.plain == nil {
		return s.sealed, nil
	}
	return seal(s.plain)
}

// IsZero reports whether s holds nothing.
func (s Secret) IsZero() bool { return s.plain == nil && s.sealed == nil }

// Wipe zeroes the clear bytes, if any. Callers wipe decided events once
// encoded, so clear keys live as short as possible.
func (s *Secret) Wipe() {
	clear(s.plain)
	s.plain = nil
}

// GoString keeps key bytes out of %#v.
func (s Secret) GoString() string { return "domain.Secret{...}" }

// Format keeps key bytes out of every fmt verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[secret]")) }

// ClientRegistered adds a client or overwrites its key and role
// (new_client). In SK mode Key is its symmetric key; in PK mode PublicKey is
// the public key it registered (not secret, kept in clear).
type ClientRegistered struct {
	Client    ID
	Name      string // empty when registered by id
	Role      Role
	Key       Secret
	PublicKey []byte
}

// ClientRemoved removes a client (remove_client).
type ClientRemoved struct{ Client ID }

// ClientKeyRotated sets a new SK client key (new_client_key).
type ClientKeyRotated struct {
	Client ID
	Key    Secret
}

// ClientTopicsReset unlinks a client from every topic (reset_client).
type ClientTopicsReset struct{ Client ID }

// TopicCreated creates a topic with its first key (new_topic).
type TopicCreated struct {
	Topic ID
	Name  string
	Key   Secret
}

// TopicKeyRotated gives an existing topic a new key (new_topic again).
type TopicKeyRotated struct {
	Topic ID
	Key   Secret
}

// TopicRemoved removes a topic and all its links (remove_topic).
type TopicRemoved struct{ Topic ID }

// TopicClientLinked links a client to a topic (new_topic_client).
type TopicClientLinked struct{ Topic, Client ID }

// TopicClientUnlinked unlinks a client from a topic (remove_topic_client).
type TopicClientUnlinked struct{ Topic, Client ID }

// C2KeyGenerated sets a new C2 key pair (PK mode; first key and
// new_c2_key). Public is in clear, Private is sealed.
type C2KeyGenerated struct {
	Public  []byte
	Private Secret
}

// Recipient is one client a queued command goes to, with the version of
// that client's key that protects it (SK: the client key; PK: the client
// public key the command key is agreed with).
type Recipient struct {
	Client     ID
	KeyVersion uint64
}

// CommandQueued queues one command for one or more clients. The arguments
// are references to keys by version (see the package documentation); the
// delivery worker builds and protects the bytes at publish time.
type CommandQueued struct {
	Code core.CommandCode
	// Topic is the topic hash of RemoveTopic and SetTopicKey;
	// TopicKeyVersion the version in topic-<hash> of the SetTopicKey key.
	Topic           ID
	TopicKeyVersion uint64
	// Subject is the client whose key a command carries: SetIdKey (the
	// recipient itself, SubjectKeyVersion = the new key), SetPubKey (the
	// source client, SubjectKeyVersion = its public key version) and
	// RemovePubKey (the id to remove).
	Subject           ID
	SubjectKeyVersion uint64
	// C2KeyVersion is the C2 key pair that protects the command in PK
	// mode (for SetC2Key: the OLD pair). NewC2KeyVersion is the pair
	// SetC2Key announces.
	C2KeyVersion    uint64
	NewC2KeyVersion uint64
	// Recipients in delivery order (a rotation lists consumers first).
	Recipients []Recipient
}

// CommandDelivered records that a broker ACCEPTED a queued command (its
// QoS 2 handshake with the C2 completed). The API calls this grade
// "accepted": it is no evidence that the device holds the key, only that
// the broker took it. The wire name "command.delivered.v1" stays, since
// stored logs hold it.
type CommandDelivered struct {
	Client ID
	Ref    QueueRef
}

// CommandConfirmed records that the device's own MQTT session completed
// QoS 2 for a queued command (the embedded broker saw it): the grade
// "confirmed", the best evidence the C2 has that the device took the
// command. It settles the queue entry exactly like CommandDelivered.
type CommandConfirmed struct {
	Client ID
	Ref    QueueRef
}

// DeviceSeen records that the broker saw the device online, the first time
// after its (re-)registration (later connections are not logged: they
// would flood the log). SessionPresent is the broker's view of whether the
// device resumed a stored session.
type DeviceSeen struct {
	Client         ID
	SessionPresent bool
}

// DeviceReleased records that an operator released the commands of a device
// the C2 never saw: with an external broker they go out now instead of
// waiting for its first sighting. Like DeviceSeen it holds until the
// client's next registration (a replaced device is unknown again).
type DeviceReleased struct {
	Client ID
}

// CommandFailed records that a queued command was given up. Reason is a
// short error text without key material.
type CommandFailed struct {
	Client ID
	Ref    QueueRef
	Reason string
}

// TokenCreated creates an API token. Only the SHA-256 of the secret is
// stored: the log never lets anyone authenticate.
type TokenCreated struct {
	Name string
	Role TokenRole
	Hash [32]byte
}

// TokenRevoked revokes an API token.
type TokenRevoked struct{ Name string }

// KeyExported records that an operator exported a key in clear (the admin
// key-export call): which key, which version, and, in the metadata, who.
// It never holds the key. Exactly one of Client and Topic is set.
type KeyExported struct {
	Client     ID
	Topic      ID
	KeyVersion uint64
}

// KeyUsed records that a token used a topic key through the C2's
// protect/unprotect helpers: with them an operator can encrypt or decrypt
// any topic's messages without ever exporting its key, so the use must be
// in the audit like an export. Uses are aggregated per actor (in the
// metadata), topic, key version and minute: the first use of a minute is
// recorded before the helper answers (if it cannot be recorded, the helper
// refuses), the further uses of that minute are counted and recorded in
// one more event when the minute is over. The audit shows who used which
// key how often, without one event per message. It never holds a payload.
type KeyUsed struct {
	Topic      ID
	KeyVersion uint64
	// Minute is the Unix time (seconds) of the start of the minute the
	// counted uses fall in.
	Minute uint64
	// Protects and Unprotects count the calls of each helper; Failures the
	// unprotect calls that did not open (not authentic, outside the time
	// window...), a sign of probing.
	Protects   uint64
	Unprotects uint64
	Failures   uint64
}

// MonitorFinding records what the traffic monitor found on a topic during
// one time window: Count messages of one Kind ("forged", "old_key",
// "plaintext", "stale", "future", "replay", "unknown_signer", "not_member",
// "consumer_publish", "rate_spike", "rate_drop", "sampled"), from Client
// when the monitor knows who published (zero otherwise). Findings are
// aggregated: at most one event per kind, topic, client and window, however
// many messages. It never holds a payload or a key: Detail is the monitor's
// short reason (bounded, e.g. the rate against the baseline).
type MonitorFinding struct {
	Kind   string
	Topic  ID
	Client ID
	// KeyVersion is the topic key version that authenticated the messages
	// (old_key: the stale version the device still uses), 0 if none.
	KeyVersion uint64
	// WindowStart and WindowEnd bound the window (Unix seconds).
	WindowStart uint64
	WindowEnd   uint64
	Count       uint64
	Detail      string
}

// MonitorStream holds the monitor's findings (monitor.finding.v1),
// appended with eventstore.Any like key uses.
const MonitorStream = "monitor"

// EventType implementations.
func (*ClientRegistered) EventType() Type    { return TypeClientRegistered }
func (*ClientRemoved) EventType() Type       { return TypeClientRemoved }
func (*ClientKeyRotated) EventType() Type    { return TypeClientKeyRotated }
func (*ClientTopicsReset) EventType() Type   { return TypeClientTopicsReset }
func (*TopicCreated) EventType() Type        { return TypeTopicCreated }
func (*TopicKeyRotated) EventType() Type     { return TypeTopicKeyRotated }
func (*TopicRemoved) EventType() Type        { return TypeTopicRemoved }
func (*TopicClientLinked) EventType() Type   { return TypeTopicClientLinked }
func (*TopicClientUnlinked) EventType() Type { return TypeTopicClientUnlinked }
func (*C2KeyGenerated) EventType() Type      { return TypeC2KeyGenerated }
func (*CommandQueued) EventType() Type       { return TypeCommandQueued }
func (*CommandDelivered) EventType() Type    { return TypeCommandDelivered }
func (*CommandFailed) EventType() Type       { return TypeCommandFailed }
func (*TokenCreated) EventType() Type        { return TypeTokenCreated }
func (*TokenRevoked) EventType() Type        { return TypeTokenRevoked }
func (*KeyExported) EventType() Type         { return TypeKeyExported }
func (*CommandConfirmed) EventType() Type    { return TypeCommandConfirmed }
func (*DeviceSeen) EventType() Type          { return TypeDeviceSeen }
func (*KeyUsed) EventType() Type             { return TypeKeyUsed }
func (*DeviceReleased) EventType() Type      { return TypeDeviceReleased }
func (*MonitorFinding) EventType() Type      { return TypeMonitorFinding }

// SecretOf returns the sealed key of an event that carries one (client
// registered in SK mode, client key rotated, topic created / rotated, C2
// key generated) and whether it has one.
func SecretOf(ev Event) (Secret, bool) {
	switch e := ev.(type) {
	case *ClientRegistered:
		return e.Key, !e.Key.IsZero()
	case *ClientKeyRotated:
		return e.Key, true
	case *TopicCreated:
		return e.Key, true
	case *TopicKeyRotated:
		return e.Key, true
	case *C2KeyGenerated:
		return e.Private, true
	}
	return Secret{}, false
}

// WipeSecrets zeroes the clear key bytes of decided events.
func WipeSecrets(evs []Event) {
	for _, ev := range evs {
		switch e := ev.(type) {
		case *ClientRegistered:
			e.Key.Wipe()
		case *ClientKeyRotated:
			e.Key.Wipe()
		case *TopicCreated:
			e.Key.Wipe()
		case *TopicKeyRotated:
			e.Key.Wipe()
		case *C2KeyGenerated:
			e.Private.Wipe()
		}
	}
}
