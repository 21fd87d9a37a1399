package c2

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/eventcodec"
	"github.com/e4c2/e4c2/suites/core"
)

// ClientRef names a client by name or by id (one of the two).
type ClientRef struct {
	Name string
	ID   []byte
}

// ByName refers to a client by name.
func ByName(name string) ClientRef { return ClientRef{Name: name} }

// ByID refers to a client by its 16-byte id.
func ByID(id domain.ID) ClientRef { return ClientRef{ID: id[:]} }

// Resolve returns the id of the client and its name if given.
func (r ClientRef) Resolve() (domain.ID, error) {
	if r.Name != "" {
		if err := core.ValidateName(r.Name); err != nil {
			return domain.ID{}, err
		}
		id := domain.ClientID(r.Name)
		if r.ID != nil && string(r.ID) != string(id[:]) {
			return domain.ID{}, fmt.Errorf("%w: id does not match name", core.ErrInvalidName)
		}
		return id, nil
	}
	return domain.IDFromBytes(r.ID)
}

func (r ClientRef) String() string {
	if r.Name != "" {
		return r.Name
	}
	return fmt.Sprintf("%x", r.ID)
}

func resolveErr(op string, r ClientRef, err error) error {
	return &domain.OpError{Op: op, Subject: r.String(), Err: err}
}

func topicHash(op, topic string) (domain.ID, error) {
	if err := core.ValidateTopic(topic); err != nil {
		return domain.ID{}, &domain.OpError{Op: op, Err: err}
	}
	return domain.TopicHash(topic), nil
}

// clientState is the view of client commands.
func (s *Service) clientState(id domain.ID) domain.State {
	return domain.State{Client: s.ks.ClientView(id), C2: s.ks.C2View()}
}

// NewClient is new_client: register a client (by name or id) with its key
// (SK: the suite's symmetric key size; PK: a public key the suite accepts)
// and its role. No command is sent. An existing client is refused with
// domain.ErrClientExists: overwriting it would change the key the C2 uses
// without the device knowing (ReplaceClient or NewClientKey rotate it).
func (s *Service) NewClient(ctx context.Context, o Origin, c ClientRef, key []byte, role domain.Role) (Result, error) {
	return s.registerClient(ctx, o, c, key, role, false)
}

// ReplaceClient is new_client over an existing client with a key chosen by
// the caller: it keeps the role (role 0, or the same role) and does what a
// rotation does, so the device learns the key (SK: SetIdKey protected with
// the key it holds; PK: the public key is replaced, the device holds its
// own private key). A client that does not exist is registered.
func (s *Service) ReplaceClient(ctx context.Context, o Origin, c ClientRef, key []byte, role domain.Role) (Result, error) {
	return s.registerClient(ctx, o, c, key, role, true)
}

func (s *Service) registerClient(ctx context.Context, o Origin, c ClientRef, key []byte, role domain.Role, replace bool) (Result, error) {
	const op = "new_client"
	id, err := c.Resolve()
	if err != nil {
		return Result{}, resolveErr(op, c, err)
	}
	switch s.mode {
	case core.SymKey:
		if n := s.suite.Sizes().Key; len(key) != n {
			return Result{}, resolveErr(op, c, fmt.Errorf("%w: key must be %d bytes", core.ErrInvalidKey, n))
		}
	case core.PubKey:
		if err := s.pk.CheckPublicKey(key); err != nil {
			return Result{}, resolveErr(op, c, err)
		}
	}
	if s.mode == core.PubKey && o.CorrelationID == "" {
		o.CorrelationID = s.newID() // the registration and the resends it causes
	}
	res, err := s.exec(ctx, o, func() domain.Command {
		cmd := domain.RegisterClient{Client: id, Name: c.Name, Role: role, Create: !replace, Replace: replace}
		if s.mode == core.SymKey {
			cmd.Key = clone(key)
		} else {
			cmd.PublicKey = clone(key)
		}
		return cmd
	}, func(domain.Command) domain.State { return s.clientState(id) })
	if err != nil || s.mode != core.PubKey {
		return res, err
	}
	// PK: the devices that were sent this client's public key should now
	// hold the new one (the read model moved their desired version): the
	// reconciler sends it to each.
	for _, dst := range s.ks.PubKeyHolders(id) {
		r, err := s.Resync(ctx, o, ByID(dst), false)
		res.Queued += r.Queued
		if err != nil && !errors.Is(err, domain.ErrUnknownClient) {
			return res, fmt.Errorf("c2: %s: resend the new public key to %s: %w", op, dst, err)
		}
	}
	return res, nil
}

// RemoveClient is remove_client; resetFirst queues ResetTopics to the
// device before it is forgotten.
func (s *Service) RemoveClient(ctx context.Context, o Origin, c ClientRef, resetFirst bool) (Result, error) {
	id, err := c.Resolve()
	if err != nil {
		return Result{}, resolveErr("remove_client", c, err)
	}
	return named(c)(s.exec(ctx, o, func() domain.Command { return domain.RemoveClient{Client: id, ResetFirst: resetFirst} },
		func(domain.Command) domain.State { return s.clientState(id) }))
}

// NewTopicClient is new_topic_client: link the client to the topic and
// send it the topic key.
func (s *Service) NewTopicClient(ctx context.Context, o Origin, c ClientRef, topic string) (Result, error) {
	return s.AttachClients(ctx, o, topic, []ClientRef{c})
}

// AttachClients links many clients to a topic in one decision (one event
// batch in the topic stream) and sends each SetTopicKey.
func (s *Service) AttachClients(ctx context.Context, o Origin, topic string, cs []ClientRef) (Result, error) {
	const op = "new_topic_client"
	h, err := topicHash(op, topic)
	if err != nil {
		return Result{}, err
	}
	ids := make([]domain.ID, len(cs))
	for i, c := range cs {
		if ids[i], err = c.Resolve(); err != nil {
			return Result{}, resolveErr(op, c, err)
		}
	}
	return named(cs...)(s.exec(ctx, o, func() domain.Command { return domain.LinkClients{Topic: h, Clients: ids} },
		func(domain.Command) domain.State {
			return domain.State{Topic: s.ks.TopicViewOf(h, ids), Targets: s.ks.ClientViews(ids), C2: s.ks.C2View()}
		}))
}

// RemoveTopicClient is remove_topic_client.
func (s *Service) RemoveTopicClient(ctx context.Context, o Origin, c ClientRef, topic string) (Result, error) {
	const op = "remove_topic_client"
	h, err := topicHash(op, topic)
	if err != nil {
		return Result{}, err
	}
	id, err := c.Resolve()
	if err != nil {
		return Result{}, resolveErr(op, c, err)
	}
	return named(c)(s.exec(ctx, o, func() domain.Command { return domain.UnlinkClient{Topic: h, Client: id} },
		func(domain.Command) domain.State {
			return domain.State{Topic: s.ks.TopicViewOf(h, []domain.ID{id}), Client: s.ks.ClientView(id), C2: s.ks.C2View()}
		}))
}

// ResetClient is reset_client.
func (s *Service) ResetClient(ctx context.Context, o Origin, c ClientRef) (Result, error) {
	id, err := c.Resolve()
	if err != nil {
		return Result{}, resolveErr("reset_client", c, err)
	}
	return named(c)(s.exec(ctx, o, func() domain.Command { return domain.ResetClient{Client: id} },
		func(domain.Command) domain.State { return s.clientState(id) }))
}

// ResetClients resets many clients (one decision per client stream). It
// returns the result of each (in order) and the failures joined.
func (s *Service) ResetClients(ctx context.Context, o Origin, cs []ClientRef) ([]Result, error) {
	out := make([]Result, len(cs))
	var errs []error
	for i, c := range cs {
		r, err := s.ResetClient(ctx, o, c)
		out[i] = r
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// NewTopic is new_topic on a new topic: create it with a random key. An
// existing topic is refused with domain.ErrTopicExists, so that a creation
// never rotates a key by accident (RotateTopic does that).
func (s *Service) NewTopic(ctx context.Context, o Origin, topic string) (Result, error) {
	return s.putTopic(ctx, o, topic, domain.PutTopic{Create: true})
}

// RotateTopic is new_topic on an existing topic: a new random key, sent to
// every linked client with SetTopicKey (consumers first). A missing topic
// is refused with domain.ErrUnknownTopic (a typo must not create one).
func (s *Service) RotateTopic(ctx context.Context, o Origin, topic string) (Result, error) {
	return s.putTopic(ctx, o, topic, domain.PutTopic{Rotate: true})
}

func (s *Service) putTopic(ctx context.Context, o Origin, topic string, intent domain.PutTopic) (Result, error) {
	h, err := topicHash("new_topic", topic)
	if err != nil {
		return Result{}, err
	}
	key, err := s.suite.GenerateKey()
	if err != nil {
		return Result{}, fmt.Errorf("c2: new_topic: generate key: %w", err)
	}
	defer clear(key)
	return s.exec(ctx, o, func() domain.Command {
		return domain.PutTopic{Topic: topic, Key: clone(key), Create: intent.Create, Rotate: intent.Rotate}
	},
		func(domain.Command) domain.State { return domain.State{Topic: s.ks.TopicView(h), C2: s.ks.C2View()} })
}

// RemoveTopic is remove_topic.
func (s *Service) RemoveTopic(ctx context.Context, o Origin, topic string) (Result, error) {
	h, err := topicHash("remove_topic", topic)
	if err != nil {
		return Result{}, err
	}
	return s.exec(ctx, o, func() domain.Command { return domain.RemoveTopic{Topic: h} },
		func(domain.Command) domain.State { return domain.State{Topic: s.ks.TopicView(h), C2: s.ks.C2View()} })
}

// NewClientKey is new_client_key (SK mode): a new random client key, sent
// with SetIdKey protected by the old one.
func (s *Service) NewClientKey(ctx context.Context, o Origin, c ClientRef) (Result, error) {
	const op = "new_client_key"
	id, err := c.Resolve()
	if err != nil {
		return Result{}, resolveErr(op, c, err)
	}
	if s.mode != core.SymKey {
		return Result{}, resolveErr(op, c, domain.ErrWrongMode)
	}
	key, err := s.suite.GenerateKey()
	if err != nil {
		return Result{}, fmt.Errorf("c2: %s: generate key: %w", op, err)
	}
	defer clear(key)
	return named(c)(s.exec(ctx, o, func() domain.Command { return domain.RotateClientKey{Client: id, Key: clone(key)} },
		func(domain.Command) domain.State { return s.clientState(id) }))
}

// ResetClientPubKeys is reset_client_pubkeys (PK mode).
func (s *Service) ResetClientPubKeys(ctx context.Context, o Origin, c ClientRef) (Result, error) {
	id, err := c.Resolve()
	if err != nil {
		return Result{}, resolveErr("reset_client_pubkeys", c, err)
	}
	return named(c)(s.exec(ctx, o, func() domain.Command { return domain.ResetClientPubKeys{Client: id} },
		func(domain.Command) domain.State { return s.clientState(id) }))
}

func (s *Service) pubKeyOp(ctx context.Context, o Origin, op string, dst, src ClientRef, mk func(d, s domain.ID) domain.Command) (Result, error) {
	d, err := dst.Resolve()
	if err != nil {
		return Result{}, resolveErr(op, dst, err)
	}
	sr, err := src.Resolve()
	if err != nil {
		return Result{}, resolveErr(op, src, err)
	}
	return named(dst, src)(s.exec(ctx, o, func() domain.Command { return mk(d, sr) },
		func(domain.Command) domain.State {
			return domain.State{Client: s.ks.ClientView(d), Peer: s.ks.ClientView(sr), C2: s.ks.C2View()}
		}))
}

// SendClientPubKey is send_client_pubkey (PK mode): dst gets SetPubKey
// with src's signing key and id.
func (s *Service) SendClientPubKey(ctx context.Context, o Origin, dst, src ClientRef) (Result, error) {
	return s.pubKeyOp(ctx, o, "send_client_pubkey", dst, src, func(d, sr domain.ID) domain.Command {
		return domain.SendClientPubKey{Dst: d, Src: sr}
	})
}

// RemoveClientPubKey is remove_client_pubkey (PK mode).
func (s *Service) RemoveClientPubKey(ctx context.Context, o Origin, dst, src ClientRef) (Result, error) {
	return s.pubKeyOp(ctx, o, "remove_client_pubkey", dst, src, func(d, sr domain.ID) domain.Command {
		return domain.RemoveClientPubKey{Dst: d, Src: sr}
	})
}

// NewC2Key is new_c2_key (PK mode): a new C2 key pair; every client gets
// SetC2Key protected with the old pair.
func (s *Service) NewC2Key(ctx context.Context, o Origin) (Result, error) {
	if s.mode != core.PubKey {
		return Result{}, &domain.OpError{Op: "new_c2_key", Err: domain.ErrWrongMode}
	}
	kp, err := s.pk.GenerateC2Key()
	if err != nil {
		return Result{}, fmt.Errorf("c2: new_c2_key: generate: %w", err)
	}
	priv := kp.Bytes()
	defer clear(priv)
	pub := kp.PublicKey()
	return s.exec(ctx, o, func() domain.Command { return domain.RotateC2Key{Public: pub, Private: clone(priv)} },
		func(domain.Command) domain.State { return domain.State{C2: s.ks.C2View(), Clients: s.ks.Members()} })
}

// ensureC2Key creates the first C2 key pair unless one exists; a concurrent
// creator (another instance) wins without a second rotation.
func (s *Service) ensureC2Key(ctx context.Context) error {
	kp, err := s.pk.GenerateC2Key()
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	priv := kp.Bytes()
	defer clear(priv)
	d, err := domain.Decide(domain.State{Mode: s.mode}, domain.RotateC2Key{Public: kp.PublicKey(), Private: clone(priv)})
	if err != nil {
		return err
	}
	evs, err := eventcodec.EncodeDecision(d, s.sealer, s.meta(Origin{Actor: "system"}), s.newID)
	if err != nil {
		return err
	}
	_, err = s.store.Append(ctx, d.Stream, eventstore.NoStream, evs...)
	if err != nil && !errors.Is(err, eventstore.ErrConflict) {
		return err
	}
	return s.runner.Wait(ctx, func() bool { return s.ks.C2View().Exists })
}

// tokenSecretPrefix marks C2 API token secrets (helps secret scanners).
const tokenSecretPrefix = "e4c2_"

// CreateToken creates an API token and returns its secret, once: only its
// SHA-256 is stored.
func (s *Service) CreateToken(ctx context.Context, o Origin, name string, role domain.TokenRole) (string, Result, error) {
	var raw [32]byte
	s.randMu.Lock()
	_, err := io.ReadFull(s.rand, raw[:])
	s.randMu.Unlock()
	if err != nil {
		return "", Result{}, fmt.Errorf("c2: create_token: random: %w", err)
	}
	secret := tokenSecretPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(secret))
	res, err := s.exec(ctx, o, func() domain.Command { return domain.CreateToken{Name: name, Role: role, Hash: sum} },
		func(domain.Command) domain.State { return domain.State{Token: s.ks.TokenView(name)} })
	if err != nil {
		return "", Result{}, err
	}
	return secret, res, nil
}

// RevokeToken revokes an API token.
func (s *Service) RevokeToken(ctx context.Context, o Origin, name string) (Result, error) {
	return s.exec(ctx, o, func() domain.Command { return domain.RevokeToken{Name: name} },
		func(domain.Command) domain.State { return domain.State{Token: s.ks.TokenView(name)} })
}
