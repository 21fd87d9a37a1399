package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/e4c2/e4c2/client/ack"
)

// AckConfig configures Acks.
type AckConfig struct {
	// Open authenticates an acknowledgement of device id and returns its
	// body (the C2 service checks it with the device's key). Required.
	Open func(id [16]byte, protected []byte) ([]byte, error)
	// Known reports whether a device acknowledged before (e.g. the C2 saw
	// it in an earlier run): such a device is waited for even before its
	// first hello of this run. Optional.
	Known func(id [16]byte) bool
	// OnOnline is called when a device says hello. Optional; must not block.
	OnOnline func(id [16]byte)
	// Released reports whether an operator released the commands of a
	// device that never said hello (one that does not acknowledge, e.g.
	// a reference device): they are then published, graded Accepted, as
	// without acks, until the device's first hello. Optional.
	Released func(id [16]byte) bool
	// ProbeTimeout bounds the wait for the ack of a known device whose
	// presence is not known yet (default 10 s); past it the device counts
	// as offline until its next hello.
	ProbeTimeout time.Duration
	// Logger receives rejected acks (default slog.Default()).
	Logger *slog.Logger
}

// Acks makes an external broker connection a DevicePublisher through the
// device acknowledgement extension (package client/ack): a device gets its
// commands only while it is online (from its hello to its will), protected
// at that moment, and each is confirmed by the device's signed ack. A device
// that never said hello is held, like a device that never connected to the
// embedded broker, unless an operator released it (AckConfig.Released):
// devices that cannot acknowledge (the 2020 reference library) then get
// their commands graded accepted.
type Acks struct {
	*Paho
	cfg AckConfig

	mu      sync.Mutex
	devices map[[16]byte]*ackDevice
}

type ackDevice struct {
	known   bool // it acknowledges
	online  bool
	probe   bool // known from an earlier run, presence not known yet
	waiters map[[16]byte]chan error
}

var _ DevicePublisher = (*Acks)(nil)

// NewAcks subscribes p to every device's ack topic.
func NewAcks(p *Paho, cfg AckConfig) (*Acks, error) {
	if cfg.Open == nil {
		return nil, errors.New("mqtt: acks: no Open function")
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &Acks{Paho: p, cfg: cfg, devices: map[[16]byte]*ackDevice{}}
	p.Subscribe(ack.TopicPrefix+"+", a.handle)
	p.OnConnectionChange(a.lost, a.back)
	return a, nil
}

// lost: the broker connection dropped. Exchanges in flight end (the worker
// waits for the broker and sends them again, protected anew), and what the
// C2 knew of presence is void: a restarted broker may have lost hellos and
// wills. Devices that acknowledge are probed again once the connection is
// back.
func (a *Acks) lost() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, d := range a.devices {
		for dg, ch := range d.waiters {
			ch <- ErrUnavailable
			delete(d.waiters, dg)
		}
		if d.known {
			d.online, d.probe = true, true
		}
	}
}

// back: the connection is up again: wake every device that acknowledges, so
// its waiting commands are tried (a silent one is set aside again after
// ProbeTimeout, until its next hello).
func (a *Acks) back() {
	a.mu.Lock()
	var ids [][16]byte
	for id, d := range a.devices {
		if d.known {
			ids = append(ids, id)
		}
	}
	a.mu.Unlock()
	if a.cfg.OnOnline != nil {
		for _, id := range ids {
			a.cfg.OnOnline(id)
		}
	}
}

// device returns the record of id, creating it; a.mu is held.
func (a *Acks) device(id [16]byte) *ackDevice {
	d := a.devices[id]
	if d == nil {
		d = &ackDevice{waiters: map[[16]byte]chan error{}}
		if a.cfg.Known != nil && a.cfg.Known(id) {
			d.known, d.online, d.probe = true, true, true
		}
		a.devices[id] = d
	}
	return d
}

func (a *Acks) handle(topic string, payload []byte) {
	id, ok := ack.ParseTopic(topic)
	if !ok {
		return
	}
	if k, _ := ack.Parse(payload); k == ack.Offline {
		// A will: clear text, see the package documentation.
		a.mu.Lock()
		d := a.device(id)
		if d.known {
			d.online, d.probe = false, false
			for dg, ch := range d.waiters {
				ch <- ErrOffline
				delete(d.waiters, dg)
			}
		}
		a.mu.Unlock()
		return
	}
	body, err := a.cfg.Open(id, payload)
	if err != nil {
		a.cfg.Logger.Warn("mqtt: rejected a device acknowledgement", "client", fmt.Sprintf("%x", id), "error", err)
		return
	}
	kind, dg := ack.Parse(body)
	switch kind {
	case ack.Hello:
		a.mu.Lock()
		d := a.device(id)
		d.known, d.online, d.probe = true, true, false
		a.mu.Unlock()
		if a.cfg.OnOnline != nil {
			a.cfg.OnOnline(id)
		}
	case ack.Applied:
		a.mu.Lock()
		d := a.device(id)
		d.known, d.online, d.probe = true, true, false
		if ch, ok := d.waiters[dg]; ok {
			ch <- nil
			delete(d.waiters, dg)
		}
		a.mu.Unlock()
	}
}

// Online implements DevicePublisher.
func (a *Acks) Online(id [16]byte) bool {
	a.mu.Lock()
	d := a.device(id)
	online, known := d.online, d.known
	a.mu.Unlock()
	return online || (!known && a.released(id))
}

// released: a device that never acknowledged whose commands an operator
// released (AckConfig.Released).
func (a *Acks) released(id [16]byte) bool { return a.cfg.Released != nil && a.cfg.Released(id) }

// Deliver implements DevicePublisher.
func (a *Acks) Deliver(ctx context.Context, id [16]byte, payload []byte) (Evidence, error) {
	a.mu.Lock()
	d := a.device(id)
	if !d.online {
		known := d.known
		a.mu.Unlock()
		if !known && a.released(id) {
			// Never acknowledged, released: what a broker accepts is
			// all the C2 will know.
			if err := a.Publish(ctx, ControlTopic(id), payload); err != nil {
				return 0, err
			}
			return Accepted, nil
		}
		return 0, fmt.Errorf("mqtt: deliver: %w", ErrOffline)
	}
	dg := ack.Digest(payload)
	ch := make(chan error, 1)
	d.waiters[dg] = ch
	probe := d.probe
	a.mu.Unlock()
	forget := func() {
		a.mu.Lock()
		if d.waiters[dg] == ch {
			delete(d.waiters, dg)
		}
		a.mu.Unlock()
	}
	if err := a.Publish(ctx, ControlTopic(id), payload); err != nil {
		forget()
		return 0, err
	}
	wctx := ctx
	if probe {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, a.cfg.ProbeTimeout)
		defer cancel()
	}
	select {
	case err := <-ch:
		if err != nil {
			return 0, fmt.Errorf("mqtt: deliver: %w", err)
		}
		return Confirmed, nil
	case <-wctx.Done():
		forget()
		if probe && ctx.Err() == nil {
			// Known from an earlier run and silent now: away until
			// its next hello.
			a.mu.Lock()
			if d.probe {
				d.online, d.probe = false, false
			}
			a.mu.Unlock()
			return 0, fmt.Errorf("mqtt: deliver: no ack: %w", ErrOffline)
		}
		return 0, fmt.Errorf("mqtt: deliver: no ack: %w", wctx.Err())
	}
}
