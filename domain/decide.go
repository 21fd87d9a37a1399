package domain

import (
	"fmt"
	"slices"

	"github.com/e4c2/e4c2/suites/core"
)

// Decide turns a command into events against a state view. It is pure: the
// same inputs give the same decision. Refusals are *OpError values wrapping
// the sentinels of this package or of suites/core.
//
// The view parts each command reads: client commands State.Client (and
// State.C2 in PK mode, for the protecting pair); LinkClients, UnlinkClient,
// PutTopic and RemoveTopic State.Topic (with members) and, for LinkClients,
// State.Targets / UnlinkClient State.Client; pubkey commands State.Client
// (dst) and State.Peer (src); RotateC2Key State.C2 and State.Clients; token
// commands State.Token.
func Decide(st State, cmd Command) (Decision, error) {
	if st.Mode != core.SymKey && st.Mode != core.PubKey {
		return Decision{}, opErr(cmd.Op(), "", fmt.Errorf("%w: mode not set", ErrWrongMode))
	}
	switch c := cmd.(type) {
	case RegisterClient:
		return decideRegister(st, c)
	case RemoveClient:
		return decideRemoveClient(st, c)
	case LinkClients:
		return decideLink(st, c)
	case UnlinkClient:
		return decideUnlink(st, c)
	case ResetClient:
		return decideReset(st, c)
	case PutTopic:
		return decidePutTopic(st, c)
	case RemoveTopic:
		return decideRemoveTopic(st, c)
	case RotateClientKey:
		return decideRotateClientKey(st, c)
	case ResetClientPubKeys:
		return decidePubKeyCmd(st, c.Op(), c.Client, ID{}, core.CmdResetPubKeys)
	case SendClientPubKey:
		return decidePubKeyCmd(st, c.Op(), c.Dst, c.Src, core.CmdSetPubKey)
	case RemoveClientPubKey:
		return decidePubKeyCmd(st, c.Op(), c.Dst, c.Src, core.CmdRemovePubKey)
	case RotateC2Key:
		return decideRotateC2(st, c)
	case CreateToken:
		return decideCreateToken(st, c)
	case RevokeToken:
		return decideRevokeToken(st, c)
	case RecordDelivery:
		return decideDelivery(c)
	case RecordSeen:
		return decideSeen(st, c)
	case ResyncClient:
		return decideResync(st, c)
	case ReleaseDevice:
		return decideRelease(st, c)
	}
	return Decision{}, opErr(cmd.Op(), "", fmt.Errorf("%w: %T", ErrInvalidCommand, cmd))
}

func clientSubject(v ClientView, id ID) string {
	if v.Name != "" {
		return v.Name
	}
	return id.String()
}

// c2Version returns the pair that protects commands in PK mode (0 in SK).
func c2Version(st State, op string) (uint64, error) {
	if st.Mode != core.PubKey {
		return 0, nil
	}
	if !st.C2.Exists {
		return 0, opErr(op, "", ErrNoC2Key)
	}
	return st.C2.KeyVersion, nil
}

func checkKey(op, subject string, key []byte) error {
	if len(key) == 0 || len(key) > MaxSecretLen {
		return opErr(op, subject, fmt.Errorf("%w: length %d", core.ErrInvalidKey, len(key)))
	}
	return nil
}

func decideRegister(st State, c RegisterClient) (Decision, error) {
	op := c.Op()
	subject := clientSubject(ClientView{Name: c.Name}, c.Client)
	if c.Name != "" {
		if err := ValidateClientName(c.Name); err != nil {
			return Decision{}, opErr(op, "", err)
		}
		if ClientID(c.Name) != c.Client {
			return Decision{}, opErr(op, subject, fmt.Errorf("%w: id does not match name", core.ErrInvalidName))
		}
	}
	if c.Create && c.Replace {
		return Decision{}, opErr(op, subject, fmt.Errorf("%w: create and replace", ErrInvalidCommand))
	}
	if c.Create && st.Client.Exists {
		return Decision{}, opErr(op, subject, ErrClientExists)
	}
	role := c.Role
	if c.Replace && st.Client.Exists {
		if role != 0 && role != st.Client.Role {
			return Decision{}, opErr(op, subject, fmt.Errorf("%w: replace keeps the role (%s)", ErrInvalidRole, st.Client.Role))
		}
		role = st.Client.Role
	}
	if role == 0 {
		role = RoleBoth
	}
	if !role.Valid() {
		return Decision{}, opErr(op, subject, ErrInvalidRole)
	}
	if c.Replace && st.Client.Exists && st.Mode == core.SymKey {
		if len(c.PublicKey) != 0 {
			return Decision{}, opErr(op, subject, fmt.Errorf("%w: public key in SK mode", ErrWrongMode))
		}
		return decideRotateClientKey(st, RotateClientKey{Client: c.Client, Key: c.Key})
	}
	ev := &ClientRegistered{Client: c.Client, Name: c.Name, Role: role}
	switch st.Mode {
	case core.SymKey:
		if len(c.PublicKey) != 0 {
			return Decision{}, opErr(op, subject, fmt.Errorf("%w: public key in SK mode", ErrWrongMode))
		}
		if err := checkKey(op, subject, c.Key); err != nil {
			return Decision{}, err
		}
		ev.Key = NewSecret(c.Key)
	case core.PubKey:
		if len(c.Key) != 0 {
			return Decision{}, opErr(op, subject, fmt.Errorf("%w: symmetric key in PK mode", ErrWrongMode))
		}
		if len(c.PublicKey) == 0 || len(c.PublicKey) > MaxBlobLen {
			return Decision{}, opErr(op, subject, fmt.Errorf("%w: public key length %d", core.ErrInvalidKey, len(c.PublicKey)))
		}
		ev.PublicKey = c.PublicKey
	}
	// Keep the registered name when overwriting by id.
	if ev.Name == "" && st.Client.Exists {
		ev.Name = st.Client.Name
	}
	return Decision{Stream: ClientStream(c.Client), Expected: int64(st.Client.Version), Events: []Event{ev}}, nil
}

func decideRemoveClient(st State, c RemoveClient) (Decision, error) {
	if !st.Client.Exists {
		return Decision{}, opErr(c.Op(), c.Client.String(), ErrUnknownClient)
	}
	evs := []Event{&ClientRemoved{Client: c.Client}}
	if c.ResetFirst {
		c2v, err := c2Version(st, c.Op())
		if err != nil {
			return Decision{}, err
		}
		evs = append(evs, &CommandQueued{Code: core.CmdResetTopics, C2KeyVersion: c2v,
			Recipients: []Recipient{{Client: c.Client, KeyVersion: st.Client.KeyVersion}}})
	}
	return Decision{Stream: ClientStream(c.Client), Expected: int64(st.Client.Version), Events: evs}, nil
}

func topicSubject(t TopicView) string {
	if t.Name != "" {
		return t.Name
	}
	return t.Hash.String()
}

func decideLink(st State, c LinkClients) (Decision, error) {
	op := c.Op()
	if !st.Topic.Exists {
		return Decision{}, opErr(op, c.Topic.String(), ErrUnknownTopic)
	}
	if len(c.Clients) == 0 || len(st.Targets) != len(c.Clients) {
		return Decision{}, opErr(op, topicSubject(st.Topic), fmt.Errorf("%w: client views do not match the command", ErrInvalidCommand))
	}
	c2v, err := c2Version(st, op)
	if err != nil {
		return Decision{}, err
	}
	member := make(map[ID]bool, len(st.Topic.Members))
	for _, m := range st.Topic.Members {
		member[m.Client] = true
	}
	var evs []Event
	q := &CommandQueued{Code: core.CmdSetTopicKey, Topic: st.Topic.Hash, TopicKeyVersion: st.Topic.KeyVersion, C2KeyVersion: c2v}
	seen := make(map[ID]bool, len(c.Clients))
	for i, id := range c.Clients {
		t := st.Targets[i]
		if t.ID != id {
			return Decision{}, opErr(op, topicSubject(st.Topic), fmt.Errorf("%w: client views do not match the command", ErrInvalidCommand))
		}
		if !t.Exists {
			return Decision{}, opErr(op, clientSubject(t, id), ErrUnknownClient)
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		if !member[id] {
			evs = append(evs, &TopicClientLinked{Topic: st.Topic.Hash, Client: id})
		}
		q.Recipients = append(q.Recipients, Recipient{Client: id, KeyVersion: t.KeyVersion})
	}
	evs = append(evs, q)
	return Decision{Stream: TopicStream(st.Topic.Hash), Expected: int64(st.Topic.Version), Events: evs}, nil
}

func decideUnlink(st State, c UnlinkClient) (Decision, error) {
	op := c.Op()
	if !st.Topic.Exists {
		return Decision{}, opErr(op, c.Topic.String(), ErrUnknownTopic)
	}
	var m *Member
	for i := range st.Topic.Members {
		if st.Topic.Members[i].Client == c.Client {
			m = &st.Topic.Members[i]
			break
		}
	}
	if m == nil {
		if !st.Client.Exists {
			return Decision{}, opErr(op, c.Client.String(), ErrUnknownClient)
		}
		return Decision{}, opErr(op, clientSubject(st.Client, c.Client), ErrNotLinked)
	}
	c2v, err := c2Version(st, op)
	if err != nil {
		return Decision{}, err
	}
	// The command is queued while the client is still a member: the
	// projections only deliver topic commands to members.
	evs := []Event{
		&CommandQueued{Code: core.CmdRemoveTopic, Topic: c.Topic, C2KeyVersion: c2v,
			Recipients: []Recipient{{Client: c.Client, KeyVersion: m.KeyVersion}}},
		&TopicClientUnlinked{Topic: c.Topic, Client: c.Client},
	}
	return Decision{Stream: TopicStream(c.Topic), Expected: int64(st.Topic.Version), Events: evs}, nil
}

func decideReset(st State, c ResetClient) (Decision, error) {
	if !st.Client.Exists {
		return Decision{}, opErr(c.Op(), c.Client.String(), ErrUnknownClient)
	}
	c2v, err := c2Version(st, c.Op())
	if err != nil {
		return Decision{}, err
	}
	evs := []Event{
		&ClientTopicsReset{Client: c.Client},
		&CommandQueued{Code: core.CmdResetTopics, C2KeyVersion: c2v,
			Recipients: []Recipient{{Client: c.Client, KeyVersion: st.Client.KeyVersion}}},
	}
	return Decision{Stream: ClientStream(c.Client), Expected: int64(st.Client.Version), Events: evs}, nil
}

// RotationOrder returns members sorted for delivery of a new topic key:
// consumers, then both, then publishers; link order within a role.
func RotationOrder(members []Member) []Recipient {
	sorted := slices.Clone(members)
	slices.SortStableFunc(sorted, func(a, b Member) int { return int(roleRank(a.Role)) - int(roleRank(b.Role)) })
	out := make([]Recipient, len(sorted))
	for i, m := range sorted {
		out[i] = Recipient{Client: m.Client, KeyVersion: m.KeyVersion}
	}
	return out
}

func roleRank(r Role) Role {
	if !r.Valid() {
		return RoleBoth
	}
	return r
}

func decidePutTopic(st State, c PutTopic) (Decision, error) {
	op := c.Op()
	if err := ValidateTopic(c.Topic); err != nil {
		return Decision{}, opErr(op, "", err)
	}
	h := TopicHash(c.Topic)
	if err := checkKey(op, c.Topic, c.Key); err != nil {
		return Decision{}, err
	}
	stream := TopicStream(h)
	if c.Create && st.Topic.Exists {
		return Decision{}, opErr(op, c.Topic, ErrTopicExists)
	}
	if c.Rotate && !st.Topic.Exists {
		return Decision{}, opErr(op, c.Topic, ErrUnknownTopic)
	}
	if !st.Topic.Exists {
		return Decision{Stream: stream, Expected: int64(st.Topic.Version),
			Events: []Event{&TopicCreated{Topic: h, Name: c.Topic, Key: NewSecret(c.Key)}}}, nil
	}
	evs := []Event{&TopicKeyRotated{Topic: h, Key: NewSecret(c.Key)}}
	if len(st.Topic.Members) > 0 {
		c2v, err := c2Version(st, op)
		if err != nil {
			return Decision{}, err
		}
		evs = append(evs, &CommandQueued{Code: core.CmdSetTopicKey, Topic: h,
			TopicKeyVersion: st.Topic.Version + 1, C2KeyVersion: c2v,
			Recipients: RotationOrder(st.Topic.Members)})
	}
	return Decision{Stream: stream, Expected: int64(st.Topic.Version), Events: evs}, nil
}

func decideRemoveTopic(st State, c RemoveTopic) (Decision, error) {
	op := c.Op()
	if !st.Topic.Exists {
		return Decision{}, opErr(op, c.Topic.String(), ErrUnknownTopic)
	}
	var evs []Event
	if len(st.Topic.Members) > 0 {
		c2v, err := c2Version(st, op)
		if err != nil {
			return Decision{}, err
		}
		rs := make([]Recipient, len(st.Topic.Members))
		for i, m := range st.Topic.Members {
			rs[i] = Recipient{Client: m.Client, KeyVersion: m.KeyVersion}
		}
		evs = append(evs, &CommandQueued{Code: core.CmdRemoveTopic, Topic: c.Topic, C2KeyVersion: c2v, Recipients: rs})
	}
	evs = append(evs, &TopicRemoved{Topic: c.Topic})
	return Decision{Stream: TopicStream(c.Topic), Expected: int64(st.Topic.Version), Events: evs}, nil
}

func decideRotateClientKey(st State, c RotateClientKey) (Decision, error) {
	op := c.Op()
	if st.Mode != core.SymKey {
		return Decision{}, opErr(op, c.Client.String(), ErrWrongMode)
	}
	if !st.Client.Exists {
		return Decision{}, opErr(op, c.Client.String(), ErrUnknownClient)
	}
	subject := clientSubject(st.Client, c.Client)
	if err := checkKey(op, subject, c.Key); err != nil {
		return Decision{}, err
	}
	newVersion := st.Client.Version + 1
	evs := []Event{
		&ClientKeyRotated{Client: c.Client, Key: NewSecret(c.Key)},
		// SetIdKey travels under the OLD key: the device only knows that
		// one until it has processed this very command.
		&CommandQueued{Code: core.CmdSetIDKey, Subject: c.Client, SubjectKeyVersion: newVersion,
			Recipients: []Recipient{{Client: c.Client, KeyVersion: st.Client.KeyVersion}}},
	}
	return Decision{Stream: ClientStream(c.Client), Expected: int64(st.Client.Version), Events: evs}, nil
}

func decidePubKeyCmd(st State, op string, dst, src ID, code core.CommandCode) (Decision, error) {
	if st.Mode != core.PubKey {
		return Decision{}, opErr(op, dst.String(), ErrWrongMode)
	}
	if !st.Client.Exists {
		return Decision{}, opErr(op, dst.String(), ErrUnknownClient)
	}
	c2v, err := c2Version(st, op)
	if err != nil {
		return Decision{}, err
	}
	q := &CommandQueued{Code: code, C2KeyVersion: c2v,
		Recipients: []Recipient{{Client: dst, KeyVersion: st.Client.KeyVersion}}}
	switch code {
	case core.CmdSetPubKey:
		if !st.Peer.Exists {
			return Decision{}, opErr(op, src.String(), ErrUnknownClient)
		}
		q.Subject, q.SubjectKeyVersion = src, st.Peer.KeyVersion
	case core.CmdRemovePubKey:
		// The source may be gone already: removing its key from dst is
		// exactly what one does after removing a client.
		q.Subject = src
	}
	return Decision{Stream: ClientStream(dst), Expected: int64(st.Client.Version), Events: []Event{q}}, nil
}

func decideRotateC2(st State, c RotateC2Key) (Decision, error) {
	op := c.Op()
	if st.Mode != core.PubKey {
		return Decision{}, opErr(op, "", ErrWrongMode)
	}
	if err := checkKey(op, "", c.Private); err != nil {
		return Decision{}, err
	}
	if len(c.Public) == 0 || len(c.Public) > MaxBlobLen {
		return Decision{}, opErr(op, "", fmt.Errorf("%w: public key length %d", core.ErrInvalidKey, len(c.Public)))
	}
	evs := []Event{&C2KeyGenerated{Public: c.Public, Private: NewSecret(c.Private)}}
	if st.C2.Exists && len(st.Clients) > 0 {
		rs := make([]Recipient, len(st.Clients))
		for i, m := range st.Clients {
			rs[i] = Recipient{Client: m.Client, KeyVersion: m.KeyVersion}
		}
		// SetC2Key travels under the OLD pair, the only one devices know.
		evs = append(evs, &CommandQueued{Code: core.CmdSetC2Key, C2KeyVersion: st.C2.KeyVersion,
			NewC2KeyVersion: st.C2.Version + 1, Recipients: rs})
	}
	return Decision{Stream: C2KeyStream, Expected: int64(st.C2.Version), Events: evs}, nil
}

func decideCreateToken(st State, c CreateToken) (Decision, error) {
	op := c.Op()
	if err := ValidateClientName(c.Name); err != nil {
		return Decision{}, opErr(op, "", err)
	}
	if !c.Role.Valid() {
		return Decision{}, opErr(op, c.Name, ErrInvalidRole)
	}
	if st.Token.Exists {
		return Decision{}, opErr(op, c.Name, ErrAlreadyExists)
	}
	if st.Token.Revoked {
		return Decision{}, opErr(op, c.Name, ErrTokenNameRevoked)
	}
	if c.Hash == ([32]byte{}) {
		return Decision{}, opErr(op, c.Name, fmt.Errorf("%w: empty token hash", core.ErrInvalidKey))
	}
	return Decision{Stream: TokenStream(c.Name), Expected: int64(st.Token.Version),
		Events: []Event{&TokenCreated{Name: c.Name, Role: c.Role, Hash: c.Hash}}}, nil
}

func decideRevokeToken(st State, c RevokeToken) (Decision, error) {
	if !st.Token.Exists {
		return Decision{}, opErr(c.Op(), c.Name, ErrUnknownToken)
	}
	if st.Token.Role == TokenAdmin && st.Token.Admins <= 1 {
		return Decision{}, opErr(c.Op(), c.Name, ErrLastAdminToken)
	}
	return Decision{Stream: TokenStream(c.Name), Expected: int64(st.Token.Version),
		Events: []Event{&TokenRevoked{Name: c.Name}}}, nil
}

func decideDelivery(c RecordDelivery) (Decision, error) {
	var ev Event = &CommandDelivered{Client: c.Client, Ref: c.Ref}
	if c.Failed && c.Confirmed {
		return Decision{}, opErr(c.Op(), c.Client.String(), fmt.Errorf("%w: failed and confirmed", ErrInvalidCommand))
	}
	if c.Confirmed {
		ev = &CommandConfirmed{Client: c.Client, Ref: c.Ref}
	}
	if c.Failed {
		reason := c.Reason
		if len(reason) > 1024 {
			reason = reason[:1024]
		}
		ev = &CommandFailed{Client: c.Client, Ref: c.Ref, Reason: reason}
	}
	return Decision{Stream: DeliveryStream(c.Client), Expected: -1, Events: []Event{ev}}, nil
}

// decideSeen appends device.seen only for the first sighting after a
// (re-)registration: every connection calls it, and the log must not grow
// with each one. Nothing to record is an empty decision, not an error.
func decideSeen(st State, c RecordSeen) (Decision, error) {
	if !st.Client.Exists {
		return Decision{}, opErr(c.Op(), c.Client.String(), ErrUnknownClient)
	}
	d := Decision{Stream: DeliveryStream(c.Client), Expected: -1}
	if !st.Client.Seen {
		d.Events = []Event{&DeviceSeen{Client: c.Client, SessionPresent: c.SessionPresent}}
	}
	return d, nil
}

// decideRelease appends device.released for a live device neither seen nor
// released since its registration; otherwise nothing (an operator's
// "release all" must not log one event per device each time).
func decideRelease(st State, c ReleaseDevice) (Decision, error) {
	if !st.Client.Exists {
		return Decision{}, opErr(c.Op(), c.Client.String(), ErrUnknownClient)
	}
	d := Decision{Stream: DeliveryStream(c.Client), Expected: -1}
	if !st.Client.Seen && !st.Client.Released {
		d.Events = []Event{&DeviceReleased{Client: c.Client}}
	}
	return d, nil
}

// decideResync queues ordinary command.queued events in the client stream
// (so they are serialized with its key rotations and attributed to whoever
// asked). Nothing to resend is an empty decision.
func decideResync(st State, c ResyncClient) (Decision, error) {
	op := c.Op()
	if !st.Client.Exists {
		return Decision{}, opErr(op, c.Client.String(), ErrUnknownClient)
	}
	c2v, err := c2Version(st, op)
	if err != nil {
		return Decision{}, err
	}
	pending := func(code core.CommandCode, topic ID, v uint64) bool {
		return slices.ContainsFunc(st.Sync.Pending, func(p PendingKey) bool {
			return p.Code == code && p.Topic == topic && p.Version == v
		})
	}
	self := []Recipient{{Client: c.Client, KeyVersion: st.Client.KeyVersion}}
	var evs []Event
	switch st.Mode {
	case core.SymKey:
		want, held := st.Client.KeyVersion, st.Sync.HeldKeyVersion
		if held == 0 || held > want {
			held = want
		}
		if (c.Full || held < want) && !pending(core.CmdSetIDKey, ID{}, want) {
			// Protected with the key the device is known to hold: it
			// cannot open anything else until it has this command.
			evs = append(evs, &CommandQueued{Code: core.CmdSetIDKey, Subject: c.Client, SubjectKeyVersion: want,
				Recipients: []Recipient{{Client: c.Client, KeyVersion: held}}})
		}
	case core.PubKey:
		want, held := st.C2.KeyVersion, st.Sync.HeldC2KeyVersion
		if held == 0 || held > want {
			held = want
		}
		if (c.Full || held < want) && !pending(core.CmdSetC2Key, ID{}, want) {
			// Under the pair the device knows, like a rotation's SetC2Key.
			evs = append(evs, &CommandQueued{Code: core.CmdSetC2Key, C2KeyVersion: held, NewC2KeyVersion: want,
				Recipients: self})
		}
		evs = append(evs, resyncPubKeys(st, c, c2v, self)...)
	}
	for _, t := range st.Sync.Topics {
		if t.KeyVersion == 0 || (!c.Full && t.Held >= t.KeyVersion) || pending(core.CmdSetTopicKey, t.Topic, t.KeyVersion) {
			continue
		}
		evs = append(evs, &CommandQueued{Code: core.CmdSetTopicKey, Topic: t.Topic, TopicKeyVersion: t.KeyVersion,
			C2KeyVersion: c2v, Recipients: self})
	}
	return Decision{Stream: ClientStream(c.Client), Expected: int64(st.Client.Version), Events: evs}, nil
}

// resyncPubKeys queues, after the C2 key and before the topic keys, the
// public keys a PK device should hold and does not (SetPubKey of the peer's
// current key) and those it should no longer hold but is known to
// (RemovePubKey); Full sends every one of them. Keys of removed peers are
// left alone: remove_client_pubkey takes one away. A command already
// pending for the same peer (and version) is not queued twice.
func resyncPubKeys(st State, c ResyncClient, c2v uint64, self []Recipient) []Event {
	pending := func(code core.CommandCode, peer ID, v uint64) bool {
		return slices.ContainsFunc(st.Sync.Pending, func(p PendingKey) bool {
			return p.Code == code && p.Subject == peer && p.Version == v
		})
	}
	var evs []Event
	for _, p := range st.Sync.PubKeys {
		switch {
		case !p.PeerLive:
		case p.Desired != 0 && (c.Full || p.Held != p.Desired) && !pending(core.CmdSetPubKey, p.Peer, p.Desired):
			evs = append(evs, &CommandQueued{Code: core.CmdSetPubKey, Subject: p.Peer, SubjectKeyVersion: p.Desired,
				C2KeyVersion: c2v, Recipients: self})
		case p.Desired == 0 && (c.Full || p.Held != 0) && !pending(core.CmdRemovePubKey, p.Peer, 0):
			evs = append(evs, &CommandQueued{Code: core.CmdRemovePubKey, Subject: p.Peer, C2KeyVersion: c2v, Recipients: self})
		}
	}
	return evs
}
