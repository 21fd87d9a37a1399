package mqtt

import (
	"context"
	"fmt"
)

// Gate makes a Publisher to an external broker, which cannot tell the C2
// whether a device is there, a DevicePublisher that holds the commands of
// devices the C2 has no reason to think exist yet. A device is Online once
// Ready says so (the C2 saw it, or an operator released its commands);
// until then its commands wait in the Source, the C2's outbox, instead of
// going to a broker that would keep them for no session (a device that
// never connected has none) and drop them. Worker.Wake must be called when
// Ready turns true for a device.
//
// Deliver publishes and reports Accepted: a broker's acceptance is all an
// external broker without device acknowledgements can tell.
type Gate struct {
	Publisher
	// Ready reports whether commands for a device may be handed to the
	// broker. Required; called from the worker's goroutines.
	Ready func(client [16]byte) bool
}

var _ DevicePublisher = Gate{}

// Online implements DevicePublisher.
func (g Gate) Online(client [16]byte) bool { return g.Ready(client) }

// Deliver implements DevicePublisher.
func (g Gate) Deliver(ctx context.Context, client [16]byte, payload []byte) (Evidence, error) {
	if !g.Ready(client) {
		return 0, fmt.Errorf("mqtt: deliver: not seen: %w", ErrOffline)
	}
	if err := g.Publish(ctx, ControlTopic(client), payload); err != nil {
		return 0, err
	}
	return Accepted, nil
}
