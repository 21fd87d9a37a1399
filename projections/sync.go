package projections

import (
	"slices"
	"time"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/suites/core"
)

// Desired state and evidence (DESIGN "Desired state, confirmed state"): per
// client, KeyState knows which key versions the C2 wants the device to hold
// (the current client key, C2 pair and topic keys) and which it has
// evidence of: a broker accepted the command that carries one
// (command.delivered.v1, "accepted") or the device's own session took it
// (command.confirmed.v1, "confirmed"). Failed commands are no evidence.

// The sync statuses of a device.
const (
	// SyncNeverSeen: no device.seen since the client's (re-)registration.
	SyncNeverSeen = "never_seen"
	// SyncInSync: seen, nothing pending, every desired key held.
	SyncInSync = "in_sync"
	// SyncLagging: anything else.
	SyncLagging = "lagging"
)

// The evidence grades of an in-sync claim.
const (
	// EvidenceConfirmed: every key was confirmed by the device's session
	// (or provisioned with the registration).
	EvidenceConfirmed = "confirmed"
	// EvidenceAccepted: some key was only accepted by a broker.
	EvidenceAccepted = "accepted"
)

// keyAck is the newest version of one key a broker accepted and the
// device's session confirmed (a confirmation counts as acceptance too).
type keyAck struct {
	accepted, confirmed uint64
}

// held is the newest version the device is known to hold, on either grade.
func (a keyAck) held() uint64 { return max(a.accepted, a.confirmed) }

func (a *keyAck) raise(v uint64, g ackGrade) {
	switch g {
	case ackConfirmed:
		a.confirmed = max(a.confirmed, v)
		a.accepted = max(a.accepted, v)
	case ackAccepted:
		a.accepted = max(a.accepted, v)
	}
}

type ackGrade uint8

const (
	ackNone ackGrade = iota
	ackAccepted
	ackConfirmed
)

// registered resets what a (re-)registered device is known to hold: its
// registered key and the current C2 public key (both provisioned out of
// band), no topic key, and it has not been seen since.
func (k *KeyState) registered(c *clientRec, version uint64) {
	c.idKey = keyAck{accepted: version, confirmed: version}
	c.c2 = keyAck{accepted: k.c2.keyVersion, confirmed: k.c2.keyVersion}
	clear(c.acks)
	c.seen, c.seenAt, c.released = false, 0, false
}

// acknowledge records the evidence a settled command gives.
func (k *KeyState) acknowledge(c *clientRec, q *Queued, g ackGrade) {
	if g == ackConfirmed {
		k.confirmations++
	}
	if g == ackNone {
		return
	}
	switch q.Code {
	case core.CmdSetIDKey:
		if q.Subject == c.id {
			c.idKey.raise(q.SubjectKeyVersion, g)
		}
	case core.CmdSetC2Key:
		c.c2.raise(q.NewC2KeyVersion, g)
	case core.CmdSetTopicKey:
		if ti, ok := k.topicIdx[q.Topic]; ok {
			if i := slices.Index(c.topics, ti); i >= 0 {
				c.acks[i].raise(q.TopicKeyVersion, g)
			}
		}
	}
}

func (k *KeyState) markSeen(r *eventstore.Record, id domain.ID) {
	c := &k.clients[k.client(id)]
	c.deliveryVersion = r.Version
	if c.live && !c.seen {
		c.seen, c.seenAt = true, r.Meta.Time.UnixNano()
	}
}

// KeySync is one key of a device: the version the C2 wants it to hold and
// the newest versions a broker accepted and its session confirmed.
type KeySync struct {
	Desired   uint64
	Accepted  uint64
	Confirmed uint64
}

// TopicSync is one linked topic of a device.
type TopicSync struct {
	Topic domain.ID
	Name  string
	KeySync
}

// DeviceSync is what the C2 wants a device to hold against what it has
// evidence of.
type DeviceSync struct {
	Client domain.ID
	Name   string
	// Status is SyncNeverSeen, SyncInSync or SyncLagging; Evidence the
	// grade of an in-sync claim (EvidenceConfirmed or EvidenceAccepted,
	// "" when not in sync).
	Status   string
	Evidence string
	Seen     bool
	// FirstSeen: the first device.seen since the (re-)registration.
	FirstSeen time.Time
	// Released: an operator released its commands although it was never
	// seen (device.released; an external broker gets them now).
	Released      bool
	Pending       int
	OldestPending time.Time
	// Identity is the client key: SK, the registered key counts as
	// confirmed; PK, the device's own key pair (always held).
	Identity KeySync
	// HeldKeyVersion is the client key version the device is known to
	// hold (SK): the one a resync's SetIdKey is protected with and, while
	// it is not the current one, a key its credential may be made of
	// (CredentialKeys). It is Identity's newest accepted or confirmed
	// version.
	HeldKeyVersion uint64
	// C2Key is the C2 public key (PK; zero in SK).
	C2Key  KeySync
	PK     bool
	Topics []TopicSync
	// PubKeys: the peers whose public keys the device was sent (PK), in
	// the order it was first sent each.
	PubKeys []PubKeySync
}

func (a keyAck) sync(desired uint64) KeySync {
	return KeySync{Desired: desired, Accepted: a.accepted, Confirmed: a.confirmed}
}

// status computes the sync status of a live client without allocating.
func (k *KeyState) status(c *clientRec) (status, evidence string) {
	if !c.seen {
		return SyncNeverSeen, ""
	}
	if len(c.pending) > 0 {
		return SyncLagging, ""
	}
	confirmed := true
	check := func(a keyAck, desired uint64) bool {
		if a.held() < desired {
			return false
		}
		if a.confirmed < desired {
			confirmed = false
		}
		return true
	}
	if !check(c.idKey, c.keyVersion) {
		return SyncLagging, ""
	}
	if c.pk && !check(c.c2, k.c2.keyVersion) {
		return SyncLagging, ""
	}
	if held, conf := k.pubKeysInSync(c); !held {
		return SyncLagging, ""
	} else if !conf {
		confirmed = false
	}
	for i, ti := range c.topics {
		if !check(c.acks[i], k.topics[ti].keyVersion) {
			return SyncLagging, ""
		}
	}
	if confirmed {
		return SyncInSync, EvidenceConfirmed
	}
	return SyncInSync, EvidenceAccepted
}

// DeviceSync returns the sync view of a registered client.
func (k *KeyState) DeviceSync(id domain.ID) (DeviceSync, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	ci, ok := k.clientIdx[id]
	if !ok || !k.clients[ci].live {
		return DeviceSync{}, false
	}
	c := &k.clients[ci]
	d := DeviceSync{Client: c.id, Name: c.name, Seen: c.seen, FirstSeen: unixTime(c.seenAt), Released: c.released,
		Pending: len(c.pending), Identity: c.idKey.sync(c.keyVersion), HeldKeyVersion: c.idKey.held(), PK: c.pk}
	d.Status, d.Evidence = k.status(c)
	if len(c.pending) > 0 {
		d.OldestPending = c.pending[0].Time
	}
	if c.pk {
		d.C2Key = c.c2.sync(k.c2.keyVersion)
	}
	d.Topics = make([]TopicSync, len(c.topics))
	for i, ti := range c.topics {
		t := &k.topics[ti]
		d.Topics[i] = TopicSync{Topic: t.hash, Name: t.name, KeySync: c.acks[i].sync(t.keyVersion)}
	}
	d.PubKeys = k.pubKeySyncs(c)
	return d, true
}

// FleetSummary counts the registered clients by sync status.
type FleetSummary struct {
	Clients   int
	InSync    int
	Lagging   int
	NeverSeen int
	// Pending is the number of queued commands.
	Pending int
	// Waiting is the number of queued commands of never-seen clients that
	// no operator released: with an external broker they wait in the
	// C2's outbox for the device's first sighting or a release.
	Waiting int
	// Released counts the never-seen clients an operator released.
	Released int
}

// FleetSummary walks every registered client (O(clients x topics), no
// allocation): cheap enough for an API call or a metrics scrape.
func (k *KeyState) FleetSummary() FleetSummary {
	k.mu.RLock()
	defer k.mu.RUnlock()
	f := FleetSummary{Pending: k.pendingCount}
	for i := range k.clients {
		c := &k.clients[i]
		if !c.live {
			continue
		}
		f.Clients++
		switch st, _ := k.status(c); st {
		case SyncNeverSeen:
			f.NeverSeen++
			if c.released {
				f.Released++
			} else {
				f.Waiting += len(c.pending)
			}
		case SyncInSync:
			f.InSync++
		default:
			f.Lagging++
		}
	}
	return f
}

// Seen reports whether a registered client was seen since its last
// registration (false for unknown and removed clients): the cheap check
// before appending device.seen on every connection.
func (k *KeyState) Seen(id domain.ID) (live, seen bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	ci, ok := k.clientIdx[id]
	if !ok || !k.clients[ci].live {
		return false, false
	}
	return true, k.clients[ci].seen
}

// Deliverable reports whether commands for a client may be handed to an
// external broker that cannot tell whether the device is there: it was
// seen (device.seen) or released (device.released) since its last
// registration. Unknown and removed clients are not.
func (k *KeyState) Deliverable(id domain.ID) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	ci, ok := k.clientIdx[id]
	if !ok || !k.clients[ci].live {
		return false
	}
	c := &k.clients[ci]
	return c.seen || c.released
}

// ReleasedUnseen reports whether an operator released the commands of a
// live client that has not been seen since its registration (with device
// acks: one that never said hello).
func (k *KeyState) ReleasedUnseen(id domain.ID) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	ci, ok := k.clientIdx[id]
	if !ok || !k.clients[ci].live {
		return false
	}
	return k.clients[ci].released && !k.clients[ci].seen
}

// SyncView returns the decision view of what a device holds and what is
// pending for it (domain.ResyncClient).
func (k *KeyState) SyncView(id domain.ID) domain.SyncView {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var v domain.SyncView
	ci, ok := k.clientIdx[id]
	if !ok || !k.clients[ci].live {
		return v
	}
	c := &k.clients[ci]
	v.HeldKeyVersion, v.HeldC2KeyVersion = c.idKey.held(), c.c2.held()
	v.Topics = make([]domain.TopicHeld, len(c.topics))
	for i, ti := range c.topics {
		t := &k.topics[ti]
		v.Topics[i] = domain.TopicHeld{Topic: t.hash, KeyVersion: t.keyVersion, Held: c.acks[i].held()}
	}
	for i := range c.pending {
		q := &c.pending[i]
		switch q.Code {
		case core.CmdSetIDKey:
			v.Pending = append(v.Pending, domain.PendingKey{Code: q.Code, Version: q.SubjectKeyVersion})
		case core.CmdSetC2Key:
			v.Pending = append(v.Pending, domain.PendingKey{Code: q.Code, Version: q.NewC2KeyVersion})
		case core.CmdSetTopicKey:
			v.Pending = append(v.Pending, domain.PendingKey{Code: q.Code, Topic: q.Topic, Version: q.TopicKeyVersion})
		case core.CmdSetPubKey:
			v.Pending = append(v.Pending, domain.PendingKey{Code: q.Code, Subject: q.Subject, Version: q.SubjectKeyVersion})
		case core.CmdRemovePubKey:
			v.Pending = append(v.Pending, domain.PendingKey{Code: q.Code, Subject: q.Subject})
		}
	}
	for _, p := range c.pubkeys {
		peer := &k.clients[p.peer]
		v.PubKeys = append(v.PubKeys, domain.PubKeyHeld{Peer: peer.id, PeerLive: peer.live, Desired: p.desired, Held: p.accepted})
	}
	return v
}

// LiveClientIDs returns the ids of every registered client in registration
// order (ResyncAll).
func (k *KeyState) LiveClientIDs() []domain.ID {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]domain.ID, 0, k.liveClients)
	for i := range k.clients {
		if k.clients[i].live {
			out = append(out, k.clients[i].id)
		}
	}
	return out
}

// CredentialKeys returns the client key versions a device's credential may
// be made of (SK): the current key first, then, while the rotation to it is
// not accepted or confirmed, the key the device is known to hold and the
// keys of the SetIdKey commands still pending (a device part-way through
// its queue holds one of those). ok is false for unknown and removed
// clients.
func (k *KeyState) CredentialKeys(id domain.ID) (versions []uint64, ok bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	ci, found := k.clientIdx[id]
	if !found || !k.clients[ci].live {
		return nil, false
	}
	c := &k.clients[ci]
	versions = append(versions, c.keyVersion)
	if held := c.idKey.held(); held != 0 && held < c.keyVersion {
		versions = append(versions, held)
		for i := range c.pending {
			if q := &c.pending[i]; q.Code == core.CmdSetIDKey && q.Subject == c.id && !slices.Contains(versions, q.SubjectKeyVersion) {
				versions = append(versions, q.SubjectKeyVersion)
			}
		}
	}
	return versions, true
}

// Linked reports whether a registered client is linked to topic h, and its
// role (MQTT authorization).
func (k *KeyState) Linked(id, h domain.ID) (linked bool, role domain.Role) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	ci, ok := k.clientIdx[id]
	if !ok || !k.clients[ci].live {
		return false, 0
	}
	ti, ok := k.topicIdx[h]
	if !ok || !k.topics[ti].live || !slices.Contains(k.clients[ci].topics, ti) {
		return false, 0
	}
	return true, k.clients[ci].role
}

// Confirmations returns the number of command.confirmed events applied
// (a metrics counter).
func (k *KeyState) Confirmations() uint64 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.confirmations
}
