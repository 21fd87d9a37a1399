package projections

import (
	"slices"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/suites/core"
)

// Public keys a PK device was sent (SetPubKey, RemovePubKey, ResetPubKeys):
// desired state and evidence, like the other keys (sync.go), with one
// difference: a public key can be taken away again, so evidence is not "the
// newest version ever held" but the state the newest settled command of
// each grade left on the device (a client's commands settle in its queue's
// order). A version is the peer's public key version in client-<peer>; 0
// means "does not hold it".

// pubKeyRec is one peer whose public key a device was sent.
type pubKeyRec struct {
	peer int32 // client index of the peer
	// desired: the peer key version the C2 wants the device to hold (0:
	// it removed or reset it). accepted / confirmed: what the newest
	// command of that grade left on the device.
	desired, accepted, confirmed uint64
}

// idle: nothing wanted, nothing held: the record can go.
func (p *pubKeyRec) idle() bool { return p.desired == 0 && p.accepted == 0 && p.confirmed == 0 }

// pubKey returns the record of peer in c, creating it (and the peer's
// holder link) when create is set; nil otherwise.
func (k *KeyState) pubKey(ci, peer int32, create bool) *pubKeyRec {
	c := &k.clients[ci]
	for i := range c.pubkeys {
		if c.pubkeys[i].peer == peer {
			return &c.pubkeys[i]
		}
	}
	if !create {
		return nil
	}
	c.pubkeys = append(c.pubkeys, pubKeyRec{peer: peer})
	k.clients[peer].holders = append(k.clients[peer].holders, ci)
	return &c.pubkeys[len(c.pubkeys)-1]
}

// prunePubKeys drops the idle records of client ci.
func (k *KeyState) prunePubKeys(ci int32) {
	c := &k.clients[ci]
	c.pubkeys = slices.DeleteFunc(c.pubkeys, func(p pubKeyRec) bool {
		if p.idle() {
			k.clients[p.peer].holders = removeIdx(k.clients[p.peer].holders, ci)
			return true
		}
		return false
	})
	if len(c.pubkeys) == 0 {
		c.pubkeys = nil
	}
}

// wantPubKey applies the desired-state change of a pubkey command queued
// for client ci.
func (k *KeyState) wantPubKey(ci int32, q *Queued) {
	switch q.Code {
	case core.CmdSetPubKey:
		if peer, ok := k.clientIdx[q.Subject]; ok {
			// The peer's current key: a command decided before the
			// peer's key was replaced (the log may order it after)
			// must not take the wish back to the old key.
			v := q.SubjectKeyVersion
			if p := &k.clients[peer]; p.live {
				v = max(v, p.keyVersion)
			}
			k.pubKey(ci, peer, true).desired = v
		}
	case core.CmdRemovePubKey:
		if peer, ok := k.clientIdx[q.Subject]; ok {
			if p := k.pubKey(ci, peer, false); p != nil {
				p.desired = 0
			}
		}
	case core.CmdResetPubKeys:
		c := &k.clients[ci]
		for i := range c.pubkeys {
			c.pubkeys[i].desired = 0
		}
	default:
		return
	}
	k.prunePubKeys(ci)
}

// pubKeyEvidence applies what a settled pubkey command tells of client ci.
func (k *KeyState) pubKeyEvidence(ci int32, q *Queued, g ackGrade) {
	set := func(p *pubKeyRec, v uint64) {
		p.accepted = v
		if g == ackConfirmed {
			p.confirmed = v
		}
	}
	switch q.Code {
	case core.CmdSetPubKey, core.CmdRemovePubKey:
		peer, ok := k.clientIdx[q.Subject]
		if !ok {
			return
		}
		v := q.SubjectKeyVersion
		if q.Code == core.CmdRemovePubKey {
			v = 0
		}
		if p := k.pubKey(ci, peer, v != 0); p != nil {
			set(p, v)
		}
	case core.CmdResetPubKeys:
		c := &k.clients[ci]
		for i := range c.pubkeys {
			set(&c.pubkeys[i], 0)
		}
	default:
		return
	}
	k.prunePubKeys(ci)
}

// peerRegistered: client peer has a new public key (a registration over an
// existing or removed client): every device that should hold its key
// should now hold the new one.
func (k *KeyState) peerRegistered(peer int32) {
	v := k.clients[peer].keyVersion
	for _, ci := range k.clients[peer].holders {
		if p := k.pubKey(ci, peer, false); p != nil && p.desired != 0 {
			p.desired = v
		}
	}
}

// forgetPubKeyEvidence: a re-registered device holds no public key the C2
// knows of (it is provisioned with its own pair and the C2 key only); what
// it should hold stays, for a resync to send.
func (k *KeyState) forgetPubKeyEvidence(ci int32) {
	c := &k.clients[ci]
	for i := range c.pubkeys {
		c.pubkeys[i].accepted, c.pubkeys[i].confirmed = 0, 0
	}
	k.prunePubKeys(ci)
}

// dropPubKeys forgets every public key record of a removed client: a
// client registered again under its id starts with none.
func (k *KeyState) dropPubKeys(ci int32) {
	c := &k.clients[ci]
	for i := range c.pubkeys {
		c.pubkeys[i] = pubKeyRec{peer: c.pubkeys[i].peer}
	}
	k.prunePubKeys(ci)
}

// pubKeysInSync reports whether every public key of a live peer is held as
// desired, and whether all of those are confirmed. Keys of removed peers
// are not checked: nothing resends them (remove_client_pubkey removes one).
func (k *KeyState) pubKeysInSync(c *clientRec) (held, confirmed bool) {
	confirmed = true
	for i := range c.pubkeys {
		p := &c.pubkeys[i]
		if !k.clients[p.peer].live {
			continue
		}
		if p.accepted != p.desired {
			return false, false
		}
		if p.confirmed != p.desired {
			confirmed = false
		}
	}
	return true, confirmed
}

// PubKeySync is one peer whose public key a device was sent: the peer key
// version the C2 wants it to hold (0: removed or reset) and what the newest
// accepted and confirmed commands left on it (0: not held).
type PubKeySync struct {
	Peer     domain.ID
	Name     string
	PeerLive bool
	KeySync
}

func (k *KeyState) pubKeySyncs(c *clientRec) []PubKeySync {
	if len(c.pubkeys) == 0 {
		return nil
	}
	out := make([]PubKeySync, len(c.pubkeys))
	for i, p := range c.pubkeys {
		peer := &k.clients[p.peer]
		out[i] = PubKeySync{Peer: peer.id, Name: peer.name, PeerLive: peer.live,
			KeySync: KeySync{Desired: p.desired, Accepted: p.accepted, Confirmed: p.confirmed}}
	}
	return out
}

// PubKeyHolders returns the live clients that should hold client id's
// public key (a registration replacing it must reach them).
func (k *KeyState) PubKeyHolders(id domain.ID) []domain.ID {
	k.mu.RLock()
	defer k.mu.RUnlock()
	pi, ok := k.clientIdx[id]
	if !ok {
		return nil
	}
	var out []domain.ID
	for _, ci := range k.clients[pi].holders {
		if p := k.pubKey(ci, pi, false); p != nil && p.desired != 0 && k.clients[ci].live {
			out = append(out, k.clients[ci].id)
		}
	}
	return out
}
