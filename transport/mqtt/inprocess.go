package mqtt

import (
	"context"
	"errors"
	"fmt"
)

// InlineBroker is what InProcess needs from the embedded broker
// (*broker.Broker implements it).
type InlineBroker interface {
	// Publish hands a QoS 2, not retained message to the broker; nil means
	// the broker took it. broker.ErrNotRunning when it is stopped.
	Publish(topic string, payload []byte) error
	// Running reports whether the broker is serving.
	Running() bool
}

// InProcess publishes into the embedded broker without a network
// connection. The broker's acceptance stands for PUBCOMP: from then on the
// broker runs the QoS 2 exchange with each subscriber itself, exactly as
// after a TCP publisher's PUBCOMP.
type InProcess struct {
	b      InlineBroker
	window int
}

var _ Publisher = (*InProcess)(nil)

// NewInProcess returns a publisher into b with the given safe window
// (0: DefaultWindowEmbedded).
func NewInProcess(b InlineBroker, window int) *InProcess {
	if window <= 0 {
		window = DefaultWindowEmbedded
	}
	return &InProcess{b: b, window: window}
}

// Publish implements Publisher.
func (p *InProcess) Publish(ctx context.Context, topic string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mqtt: publish: %w", err)
	}
	if err := p.b.Publish(topic, payload); err != nil {
		if isUnavailable(err) {
			return fmt.Errorf("mqtt: publish: %w (%w)", ErrUnavailable, err)
		}
		return fmt.Errorf("mqtt: publish: %w", err)
	}
	return nil
}

// Connected implements Publisher.
func (p *InProcess) Connected() bool { return p.b.Running() }

// SafeWindow implements Publisher.
func (p *InProcess) SafeWindow() int { return p.window }

// DeviceBroker is what InProcessDevices needs from the embedded broker
// (*broker.Broker implements it): besides publishing, it sees each device's
// session.
type DeviceBroker interface {
	InlineBroker
	// Online reports whether the device is connected and subscribed to its
	// control topic.
	Online(id [16]byte) bool
	// Deliver publishes payload on the device's control topic and returns
	// nil once the device's own session completed QoS 2 for it;
	// broker.ErrOffline when the device is not online or leaves first.
	Deliver(ctx context.Context, id [16]byte, payload []byte) error
}

// InProcessDevices is the embedded broker as a DevicePublisher: a command
// goes only to a device that is online, and is confirmed by the device's
// own PUBCOMP, not by the broker taking it.
type InProcessDevices struct {
	InProcess
	d DeviceBroker
}

var _ DevicePublisher = (*InProcessDevices)(nil)

// NewInProcessDevices returns a device publisher into b with the given
// window of concurrent exchanges (0: DefaultWindowDevices).
func NewInProcessDevices(b DeviceBroker, window int) *InProcessDevices {
	if window <= 0 {
		window = DefaultWindowDevices
	}
	return &InProcessDevices{InProcess: InProcess{b: b, window: window}, d: b}
}

// Online implements DevicePublisher.
func (p *InProcessDevices) Online(id [16]byte) bool { return p.d.Online(id) }

// Deliver implements DevicePublisher: the embedded broker sees the
// device's own PUBCOMP, so a nil from it is Confirmed.
func (p *InProcessDevices) Deliver(ctx context.Context, id [16]byte, payload []byte) (Evidence, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("mqtt: deliver: %w", err)
	}
	err := p.d.Deliver(ctx, id, payload)
	switch {
	case err == nil:
		return Confirmed, nil
	case isOffline(err):
		return 0, fmt.Errorf("mqtt: deliver: %w", ErrOffline)
	case isUnavailable(err):
		return 0, fmt.Errorf("mqtt: deliver: %w (%w)", ErrUnavailable, err)
	}
	return 0, fmt.Errorf("mqtt: deliver: %w", err)
}

// The embedded broker's errors say what they mean through behaviour
// methods, so this package needs no import of it (the broker is one
// implementation of InlineBroker among others, fakes included).
func isUnavailable(err error) bool {
	var e interface{ Unavailable() bool }
	return errors.As(err, &e) && e.Unavailable()
}

func isOffline(err error) bool {
	var e interface{ DeviceOffline() bool }
	return errors.As(err, &e) && e.DeviceOffline()
}
