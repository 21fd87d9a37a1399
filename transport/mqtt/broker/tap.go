package broker

import (
	"bytes"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// PublishTap sees the application messages clients publish through the
// broker: a traffic monitor's source. Published is called on the
// publishing connection's goroutine after the broker delivered the message
// to its subscribers, so it must not block (a monitor queues or drops).
// The payload is the broker's own copy, not changed afterwards. Control
// topics (e4/#), in-process publishes (the C2's) and publishes the ACL
// refused never reach it.
type PublishTap interface {
	// Published reports a message on topic; device is the publisher's
	// device id when isDevice (an authenticated E4 device connection).
	Published(device [16]byte, isDevice bool, topic string, payload []byte)
}

// tapHook hands accepted publishes to a PublishTap.
type tapHook struct {
	mqtt.HookBase
	auth *authHook
	tap  PublishTap
}

func (h *tapHook) ID() string { return "e4-tap" }

func (h *tapHook) Provides(b byte) bool { return bytes.Contains([]byte{mqtt.OnPublished}, []byte{b}) }

func (h *tapHook) OnPublished(cl *mqtt.Client, pk packets.Packet) {
	if cl.Net.Inline || pk.Ignore || IsControlTopic(pk.TopicName) {
		return
	}
	r, id := h.auth.classify(cl)
	h.tap.Published(id, r == roleDevice, pk.TopicName, pk.Payload)
}
