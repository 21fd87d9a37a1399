package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/transport/mqtt"
)

// deliverySource adapts the C2 service's delivery queue to the MQTT worker.
type deliverySource struct {
	svc    *c2.Service
	origin c2.Origin
}

var _ mqtt.Source = (*deliverySource)(nil)

func newDeliverySource(svc *c2.Service) *deliverySource {
	return &deliverySource{svc: svc, origin: c2.Origin{Actor: "system:delivery"}}
}

func (d *deliverySource) Pending(ctx context.Context, after uint64, limit int) ([]mqtt.Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return d.items(d.svc.PendingAfter(after, limit)), nil
}

func (d *deliverySource) items(qs []projections.Queued) []mqtt.Item {
	items := make([]mqtt.Item, len(qs))
	for i := range qs {
		items[i] = mqtt.Item{ClientID: qs[i].Client, Seq: qs[i].Seq()}
		if qs[i].Code == core.CmdSetTopicKey {
			// The recipients of one SetTopicKey event (a rotation) are
			// one group, delivered by role phase: consumers, both,
			// then publishers, so receivers hold the new key before
			// senders use it. Their Seqs are one contiguous block and a
			// client appears once per event, which keeps the barrier
			// deadlock-free.
			items[i].Group = qs[i].Position
			items[i].Phase = rolePhase(d.svc, qs[i].Client)
		}
	}
	return items
}

// rolePhase is the rotation phase of a client: 0 consumer, 1 both, 2 publisher.
func rolePhase(svc *c2.Service, id domain.ID) uint8 {
	ci, ok := svc.KeyState().Client(id)
	if !ok {
		return 1
	}
	switch ci.Role {
	case domain.RoleConsumer:
		return 0
	case domain.RolePublisher:
		return 2
	}
	return 1
}

func (d *deliverySource) Changed() <-chan struct{} { return d.svc.Changed() }

func (d *deliverySource) PendingFor(ctx context.Context, client [16]byte) ([]mqtt.Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return d.items(d.svc.PendingFor(domain.ID(client), 0)), nil
}

func (d *deliverySource) lookup(it mqtt.Item) (projections.Queued, error) {
	q, ok := d.svc.QueuedBySeq(domain.ID(it.ClientID), it.Seq)
	if !ok {
		return q, fmt.Errorf("queued command %d no longer pending: %w", it.Seq, mqtt.ErrPermanent)
	}
	return q, nil
}

func (d *deliverySource) Build(ctx context.Context, it mqtt.Item, now time.Time) ([]byte, error) {
	q, err := d.lookup(it)
	if err != nil {
		return nil, err
	}
	_, payload, err := d.svc.BuildCommandAt(ctx, q, now)
	if err != nil {
		// A command whose client, topic or key is gone can never be
		// built; anything else (a closed service during shutdown) is
		// retried.
		if errors.Is(err, c2.ErrUnbuildable) || errors.Is(err, domain.ErrUnknownClient) || errors.Is(err, domain.ErrUnknownTopic) {
			return nil, fmt.Errorf("%w: %w", mqtt.ErrPermanent, err)
		}
		return nil, err
	}
	return payload, nil
}

func (d *deliverySource) Delivered(ctx context.Context, it mqtt.Item, ev mqtt.Evidence) error {
	q, err := d.lookup(it)
	if err != nil {
		return nil // already recorded (a resend after restart)
	}
	if ev == mqtt.Confirmed {
		err = d.svc.RecordConfirmed(ctx, d.origin, q)
	} else {
		err = d.svc.RecordDelivered(ctx, d.origin, q)
	}
	if err != nil && !errors.Is(err, c2.ErrNotPending) {
		return err
	}
	return nil
}

func (d *deliverySource) Failed(ctx context.Context, it mqtt.Item, reason string) error {
	q, err := d.lookup(it)
	if err != nil {
		return nil
	}
	if err := d.svc.RecordFailed(ctx, d.origin, q, reason); err != nil && !errors.Is(err, c2.ErrNotPending) {
		return err
	}
	return nil
}
