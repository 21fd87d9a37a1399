package mosquittocfg

import (
	"context"
	"fmt"
	"math"

	"github.com/e4c2/e4c2/client/credential"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/sealing"
	"github.com/e4c2/e4c2/internal/eventcodec"
	"github.com/e4c2/e4c2/projections"
)

// Collect lists the registered clients of a replayed key state as broker
// devices: role, attached topics and, for SK clients, the SK password of
// the key the device holds now. The identity keys are unsealed with s one
// at a time, used only for the HMAC and wiped at once; none is returned.
//
// The key a device holds is not always the current one: after a key
// rotation the device keeps its old key until it receives the SetIdKey
// command, and every command queued for it is protected under the key it
// holds at that point of its queue. So the first pending command's key
// version is the key the device holds, and a device with an empty queue
// holds the current key. Older key versions are read from their record in
// st, as the delivery worker does. s may be nil when no client is SK
// (NeedsKeys).
func Collect(ctx context.Context, ks *projections.KeyState, st eventstore.Store, s sealing.Sealer) ([]Device, error) {
	clients, _ := ks.Clients(0, math.MaxInt32)
	out := make([]Device, 0, len(clients))
	for _, c := range clients {
		d := Device{ID: c.ID, Name: c.Name, Role: c.Role}
		topics, _, _ := ks.ClientTopics(c.ID, 0, math.MaxInt32)
		for _, t := range topics {
			d.Topics = append(d.Topics, t.Name)
		}
		ref, ok := ks.ClientKey(c.ID)
		if !ok {
			return nil, fmt.Errorf("mosquittocfg: client %s has no key", c.ID)
		}
		if ref.Public != nil {
			d.PK = true
			out = append(out, d)
			continue
		}
		if s == nil {
			return nil, fmt.Errorf("mosquittocfg: client %s is an SK client: its password needs the keyring", c.ID)
		}
		if p := ks.Pending(c.ID, 1); len(p) == 1 && p[0].KeyVersion != 0 && p[0].KeyVersion != ref.Version {
			old, err := clientKeyAt(ctx, st, c.ID, p[0].KeyVersion)
			if err != nil {
				return nil, err
			}
			ref = old
		}
		key, err := eventcodec.OpenSecret(s, domain.SealedSecret(ref.Sealed), ref.Stream, ref.Version, ref.WireType)
		if err != nil {
			return nil, fmt.Errorf("mosquittocfg: client %s: %w", c.ID, err)
		}
		d.Password = credential.SKPassword(key, c.ID[:])
		clear(key)
		out = append(out, d)
	}
	return out, nil
}

// NeedsKeys reports whether the key state holds an SK client, whose
// password Collect can compute only with a Sealer.
func NeedsKeys(ks *projections.KeyState) bool {
	clients, _ := ks.Clients(0, math.MaxInt32)
	for _, c := range clients {
		if ref, ok := ks.ClientKey(c.ID); ok && ref.Public == nil {
			return true
		}
	}
	return false
}

// clientKeyAt returns the sealed client key recorded at version v of the
// client's stream.
func clientKeyAt(ctx context.Context, st eventstore.Store, id domain.ID, v uint64) (projections.KeyRef, error) {
	stream := domain.ClientStream(id)
	recs, err := st.ReadStream(ctx, stream, v)
	if err != nil {
		return projections.KeyRef{}, fmt.Errorf("mosquittocfg: read %s v%d: %w", stream, v, err)
	}
	if len(recs) == 0 || recs[0].Version != v {
		return projections.KeyRef{}, fmt.Errorf("mosquittocfg: %s v%d: %w: record missing", stream, v, domain.ErrInvalidEvent)
	}
	ev, err := eventcodec.DecodeRecord(&recs[0])
	if err != nil {
		return projections.KeyRef{}, fmt.Errorf("mosquittocfg: %w", err)
	}
	ref := projections.KeyRef{Stream: stream, Version: v, WireType: recs[0].Type}
	switch e := ev.(type) {
	case *domain.ClientRegistered:
		ref.Sealed = e.Key.Sealed()
	case *domain.ClientKeyRotated:
		ref.Sealed = e.Key.Sealed()
	default:
		return projections.KeyRef{}, fmt.Errorf("mosquittocfg: %s v%d is %s: %w: holds no key", stream, v, recs[0].Type, domain.ErrInvalidEvent)
	}
	return ref, nil
}
