package c2

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/e4c2/e4c2/client/credential"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/eventcodec"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

// RecordSeen records that the broker saw device id online. Only the first
// sighting after the client's (re-)registration becomes a device.seen.v1
// event; later ones, unknown and removed clients return nil without an
// append. It is called on every device connection, so the in-memory check
// comes first and costs a read lock.
func (s *Service) RecordSeen(ctx context.Context, o Origin, id domain.ID, sessionPresent bool) error {
	if live, seen := s.ks.Seen(id); !live || seen {
		return nil
	}
	if s.closed.Load() {
		return ErrClosed
	}
	stream := domain.DeliveryStream(id)
	// Concurrent connections of one device append one event: the second
	// decides after the first one's event reached the read model.
	lock := s.streamLock(stream)
	lock.Lock()
	defer lock.Unlock()
	d, err := domain.Decide(domain.State{Mode: s.mode, Client: s.ks.ClientView(id)},
		domain.RecordSeen{Client: id, SessionPresent: sessionPresent})
	if errors.Is(err, domain.ErrUnknownClient) || (err == nil && len(d.Events) == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	if o.Actor == "" {
		o.Actor = "system"
	}
	evs, err := eventcodec.EncodeDecision(d, s.sealer, s.meta(o), s.newID)
	if err != nil {
		return err
	}
	v, err := s.store.Append(ctx, d.Stream, d.Expected, evs...)
	if err != nil {
		return fmt.Errorf("c2: record seen: %w", err)
	}
	return s.waitStream(ctx, d.Stream, v)
}

// Resync queues what the device of c lacks, in the protocol's order (SK:
// SetIdKey of the current key, protected with the key the device is known
// to hold; PK: SetC2Key of the current pair, under the pair it holds, then
// SetPubKey of each peer key it should hold and does not, RemovePubKey of
// each it should no longer hold; then SetTopicKey of every linked topic
// whose current key it does not hold).
// "Holds" means a broker accepted or the device's session confirmed the
// command that carried it. full resends every current key, held or not.
// A command already pending for the same key version is not queued again;
// Result.Queued is the number of commands queued (0 when in sync).
func (s *Service) Resync(ctx context.Context, o Origin, c ClientRef, full bool) (Result, error) {
	id, err := c.Resolve()
	if err != nil {
		return Result{}, resolveErr("resync_client", c, err)
	}
	return named(c)(s.exec(ctx, o, func() domain.Command { return domain.ResyncClient{Client: id, Full: full} },
		func(domain.Command) domain.State {
			return domain.State{Client: s.ks.ClientView(id), C2: s.ks.C2View(), Sync: s.ks.SyncView(id)}
		}))
}

// ResyncAll resyncs every registered client (one decision per client) and
// returns the number of commands queued. Clients removed meanwhile are
// skipped; other failures are joined and the rest still run.
func (s *Service) ResyncAll(ctx context.Context, o Origin, full bool) (int, error) {
	if o.CorrelationID == "" {
		o.CorrelationID = s.newID() // one request: one correlation id
	}
	n := 0
	var errs []error
	for _, id := range s.ks.LiveClientIDs() {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		res, err := s.Resync(ctx, o, ByID(id), full)
		n += res.Queued
		if err != nil && !errors.Is(err, domain.ErrUnknownClient) {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// DeviceSync returns what the C2 wants the device of c to hold against what
// it has evidence of.
func (s *Service) DeviceSync(c ClientRef) (projections.DeviceSync, error) {
	id, err := c.Resolve()
	if err != nil {
		return projections.DeviceSync{}, resolveErr("device_sync", c, err)
	}
	d, ok := s.ks.DeviceSync(id)
	if !ok {
		return d, resolveErr("device_sync", c, domain.ErrUnknownClient)
	}
	return d, nil
}

// FleetSummary counts the registered clients by sync status.
func (s *Service) FleetSummary() projections.FleetSummary { return s.ks.FleetSummary() }

// Confirmations returns the number of commands the devices' sessions
// confirmed, as applied from the log.
func (s *Service) Confirmations() uint64 { return s.ks.Confirmations() }

// credentialTimeout bounds the log read of a previous client key.
const credentialTimeout = 5 * time.Second

// VerifyDeviceCredential checks the MQTT credential of a device
// (client/credential): username is its hex id; SK, password is the HMAC
// password of its current key or, while the rotation to the current key is
// not accepted or confirmed, of the key it is known to hold (or of a key
// a still pending SetIdKey carries: a device part-way through its queue);
// PK, a signed
// timestamped password checked against the signing part of its registered
// public key at now. Unknown and removed clients fail. Clear keys are wiped
// after use; nothing is logged and no error says why a credential failed.
func (s *Service) VerifyDeviceCredential(username string, password []byte, now time.Time) (domain.ID, bool) {
	raw, ok := credential.ParseUsername(username)
	if !ok {
		return domain.ID{}, false
	}
	id := domain.ID(raw)
	versions, ok := s.ks.CredentialKeys(id)
	if !ok {
		return domain.ID{}, false
	}
	switch s.mode {
	case core.SymKey:
		ctx, cancel := context.WithTimeout(context.Background(), credentialTimeout)
		defer cancel()
		for _, v := range versions {
			if s.verifySK(ctx, id, v, password) {
				return id, true
			}
		}
	case core.PubKey:
		ref, ok := s.ks.ClientKey(id)
		if !ok || ref.Public == nil {
			return domain.ID{}, false
		}
		sp, err := s.pk.SigningPublicKey(ref.Public)
		if err != nil {
			return domain.ID{}, false
		}
		if credential.VerifyPK(s.pk, sp, id[:], password, now) == nil {
			return id, true
		}
	}
	return domain.ID{}, false
}

func (s *Service) verifySK(ctx context.Context, id domain.ID, v uint64, password []byte) bool {
	ref, err := s.clientKeyAt(ctx, id, v)
	if err != nil || ref.Sealed == nil {
		return false
	}
	key, err := s.open(ref)
	if err != nil {
		return false
	}
	defer clear(key)
	return credential.VerifySK(key, id[:], password)
}

// MaySubscribe reports whether device id may subscribe to topic: its own
// control topic, or a topic it is linked to (by topic hash, as every
// command names topics). Unknown and removed clients may not.
func (s *Service) MaySubscribe(id domain.ID, topic string) bool {
	if live, _ := s.ks.Seen(id); !live {
		return false
	}
	if topic == core.ControlTopic(id[:]) {
		return true
	}
	linked, _ := s.ks.Linked(id, domain.TopicHash(topic))
	return linked
}

// MayPublish reports whether device id may publish on topic: linked to it
// with the role publisher or both. A device never publishes on its control
// topic (only the C2 does).
func (s *Service) MayPublish(id domain.ID, topic string) bool {
	linked, role := s.ks.Linked(id, domain.TopicHash(topic))
	return linked && (role == domain.RolePublisher || role == domain.RoleBoth)
}

// ReleaseResult is the outcome of a release: the devices newly released
// and the commands of theirs that may now go to the broker.
type ReleaseResult struct {
	Released int
	Commands int
}

// Release releases the commands waiting for the device of c although the
// C2 never saw it (device.released.v1): with an external broker they are
// handed to the broker from now on instead of waiting for its first
// sighting. It is for devices the C2 cannot see (no acknowledgements):
// their commands then go out with the grade "accepted" at best. A device
// seen or released since its registration needs nothing (Released 0).
func (s *Service) Release(ctx context.Context, o Origin, c ClientRef) (ReleaseResult, error) {
	id, err := c.Resolve()
	if err != nil {
		return ReleaseResult{}, resolveErr("release_device", c, err)
	}
	res, err := named(c)(s.exec(ctx, o, func() domain.Command { return domain.ReleaseDevice{Client: id} },
		func(domain.Command) domain.State { return domain.State{Client: s.ks.ClientView(id)} }))
	if err != nil || len(res.EventIDs) == 0 {
		return ReleaseResult{}, err
	}
	d, _ := s.ks.DeviceSync(id)
	return ReleaseResult{Released: 1, Commands: d.Pending}, nil
}

// ReleaseAll releases every registered device neither seen nor released
// (one event each, one correlation id). Clients removed meanwhile are
// skipped; other failures are joined and the rest still run.
func (s *Service) ReleaseAll(ctx context.Context, o Origin) (ReleaseResult, error) {
	if o.CorrelationID == "" {
		o.CorrelationID = s.newID()
	}
	var total ReleaseResult
	var errs []error
	for _, id := range s.ks.LiveClientIDs() {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		if s.ks.Deliverable(id) {
			continue
		}
		r, err := s.Release(ctx, o, ByID(id))
		total.Released += r.Released
		total.Commands += r.Commands
		if err != nil && !errors.Is(err, domain.ErrUnknownClient) {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}
