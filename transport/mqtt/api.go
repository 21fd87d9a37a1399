package mqtt

import (
	"context"
	"errors"
	"time"

	"github.com/e4c2/e4c2/suites/core"
)

// Item is one queued command to deliver.
type Item struct {
	// ClientID is the recipient's 16-byte E4 id; the control topic is
	// derived from it (ControlTopic).
	ClientID [16]byte
	// Seq is the item's position in the delivery queue. It must be
	// strictly increasing across all items, in queue order (the global
	// event-store position of the command.queued.v1 event is the natural
	// choice). Per-client FIFO order is Seq order, and Seq is the cursor
	// of Source.Pending.
	Seq uint64
	// Ref is the Source's opaque reference to the queued command (e.g. its
	// event id); the worker only passes it back.
	Ref string
	// Group and Phase order deliveries across clients. An item of a
	// non-zero Group is not published while an item of the same Group with
	// a lower Phase is still unsettled (buffered, in flight or backing off).
	// A topic rotation uses it so that consumers hold the new key before
	// publishers start using it (docs/PROTOCOL.md section 9): a receiver's broker
	// session then gets SetTopicKey before any message under the new key.
	// Items of one Group must have consecutive Seqs in Phase order (lower
	// phases first), which keeps the barrier deadlock-free: the unsettled
	// item with the lowest Seq is never blocked.
	Group uint64
	Phase uint8
}

// Source is the durable delivery queue the Worker consumes. It is
// implemented by the C2 service; every method must be safe for concurrent
// use (Build, Delivered and Failed are called from up to Window goroutines).
type Source interface {
	// Pending returns at most limit items with Seq > after that are
	// neither delivered nor failed, in increasing Seq order. Fewer than
	// limit means "caught up". A restarted worker starts from after = 0,
	// so everything not yet recorded is delivered again.
	Pending(ctx context.Context, after uint64, limit int) ([]Item, error)
	// Changed returns a channel that receives a value after new items are
	// queued (send without blocking on a channel of capacity 1). It may
	// return nil; the worker also polls every Config.PollInterval.
	Changed() <-chan struct{}
	// Build returns the protected command for it, protected with the key
	// the command was decided with and timestamped now. An error wrapping
	// ErrPermanent (e.g. the client was removed) fails the item at once;
	// any other error counts as a failed attempt.
	Build(ctx context.Context, it Item, now time.Time) (payload []byte, err error)
	// PendingFor returns the pending items of one client in Seq order:
	// the worker calls it when a device it had set aside (offline) comes
	// online. Only used with a DevicePublisher.
	PendingFor(ctx context.Context, client [16]byte) ([]Item, error)
	// Delivered records the evidence that the item reached the broker
	// (Accepted: PUBCOMP from an external broker) or the device's own
	// session (Confirmed: embedded broker). An error is retried (with
	// back-off) until it succeeds or the worker is stopped; the item is
	// then resent after a restart.
	Delivered(ctx context.Context, it Item, ev Evidence) error
	// Failed records that the item was given up, with a reason that holds
	// no secret. Errors are retried like Delivered's.
	Failed(ctx context.Context, it Item, reason string) error
}

// Publisher sends a message with QoS 2, not retained, and waits for the
// broker to take it.
type Publisher interface {
	// Publish returns nil once the broker confirmed the message (PUBCOMP,
	// or the embedded broker accepting it). It returns an error wrapping
	// ErrUnavailable when the broker cannot be reached, and ctx's error
	// when the confirmation did not come in time.
	Publish(ctx context.Context, topic string, payload []byte) error
	// Connected reports whether the broker is reachable now.
	Connected() bool
	// SafeWindow is the largest number of unconfirmed publishes the broker
	// tolerates from this publisher; the Worker's window never exceeds it.
	SafeWindow() int
}

// Evidence is how far a delivered command is known to have gone.
type Evidence uint8

const (
	// Accepted: a broker took the message (PUBCOMP from an external
	// broker). Whether the device got it is unknown.
	Accepted Evidence = iota + 1
	// Confirmed: the device's own MQTT session completed the QoS 2
	// exchange for the message (the embedded broker sees it).
	Confirmed
)

func (e Evidence) String() string {
	switch e {
	case Accepted:
		return "accepted"
	case Confirmed:
		return "confirmed"
	}
	return "unknown"
}

// DevicePublisher is a Publisher that sees each device's session: the
// embedded broker. The worker then hands a command only to a device that is
// online, protected at that moment, and counts it delivered when the
// device's session completed QoS 2 for it; commands of offline devices wait
// in the Source (the C2's outbox) until Worker.Wake says the device is back.
type DevicePublisher interface {
	Publisher
	// Online reports whether the device is connected and subscribed to its
	// control topic.
	Online(client [16]byte) bool
	// Deliver publishes payload on the device's control topic and returns
	// the evidence it has once the exchange is over: Confirmed when the
	// device's session completed QoS 2 for it or the device acknowledged
	// it, Accepted when only a broker's acceptance is known (a device that
	// never acknowledges). It returns an error wrapping ErrOffline when the
	// device is not online or leaves before completing, ErrUnavailable
	// when the broker is down, and ctx's error when the device did not
	// complete in time.
	Deliver(ctx context.Context, client [16]byte, payload []byte) (Evidence, error)
}

var (
	// ErrOffline: the device is not connected. Its commands wait, and no
	// attempt is counted.
	ErrOffline = errors.New("mqtt: device offline")
	// ErrUnavailable: the broker cannot be reached. A publish that fails
	// with it does not count as an attempt.
	ErrUnavailable = errors.New("mqtt: broker unavailable")
	// ErrPermanent: retrying cannot help (returned, wrapped, by
	// Source.Build); the item is recorded failed at once.
	ErrPermanent = errors.New("mqtt: permanent delivery error")
	// ErrStopped: Run was called on a worker that is already stopped or
	// running.
	ErrStopped = errors.New("mqtt: worker stopped")
)

// Default windows of unconfirmed publishes per broker kind.
const (
	// DefaultWindowExternal stays below mosquitto's default
	// max_inflight_messages (20), past which it drops the publisher.
	DefaultWindowExternal = 16
	// DefaultWindowEmbedded is for the embedded mochi broker (in process,
	// or over TCP where mochi's receive maximum is 1024).
	DefaultWindowEmbedded = 64
	// DefaultWindowDevices is the number of concurrent exchanges with
	// devices through the embedded broker: each waits for one device's
	// PUBCOMP and different devices do not queue behind each other, so the
	// window covers a fleet's round trips, not a broker's inflight limit.
	DefaultWindowDevices = 1024
)

// ControlTopic returns the control topic of a client, "e4/" + lowercase hex id.
func ControlTopic(id [16]byte) string { return core.ControlTopic(id[:]) }
