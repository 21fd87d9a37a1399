package client

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/e4c2/e4c2/client/credential"
	"sync"
	"sync/atomic"
	"time"

	"github.com/e4c2/e4c2/suites/core"
)

// Client is an E4 device. It is safe for concurrent use.
type Client struct {
	set          *settings
	controlTopic string
	// cmdMu serializes the command path (decrypt, apply, persist, swap) so
	// that commands apply in arrival order; the message paths never take it.
	cmdMu sync.Mutex
	st    atomic.Pointer[state]
	// unverified opens PK messages of unknown senders (policy
	// AcceptUnknownSignerUnverified), nil otherwise.
	unverified func(topicKey, protected []byte, now time.Time, w core.Window) (plain, sender []byte, err error)
}

// Message is the result of UnprotectMessage.
type Message struct {
	// Payload is the application payload (nil for a command).
	Payload []byte
	// IsCommand is true when the message arrived on the control topic.
	IsCommand bool
	// Command is the code of the command received; meaningful when
	// IsCommand and the command authenticated and decoded (a refused
	// command of a known code still reports it).
	Command core.CommandCode
	// Sender is the sender id of a PK application message.
	Sender []byte
	// Verified is false only for a PK message accepted from an unknown
	// sender under AcceptUnknownSignerUnverified, and for payloads passed
	// through by PassthroughMissingKey.
	Verified bool
}

// New creates a client from cfg. With a StatePath, the initial state is
// written there (an existing file is an error: use Load).
func New(cfg Config) (*Client, error) {
	set, err := resolve(&cfg)
	if err != nil {
		return nil, err
	}
	id, err := resolveID(set.suite, cfg.Name, cfg.ID)
	if err != nil {
		return nil, err
	}
	st := &state{id: id, topics: map[string]topicEntry{}, pubKeys: map[string][]byte{}}
	key := cfg.Key
	if cfg.Password != "" {
		if len(key) != 0 {
			return nil, configErr("both Key and Password set")
		}
		if key, err = set.suite.DeriveKey(cfg.Password); err != nil {
			return nil, fmt.Errorf("client: derive key from password: %w", err)
		}
	} else if len(key) == 0 {
		return nil, configErr("no identity key or password")
	}
	if set.mode == core.SymKey {
		if err := checkSymKey(set, key); err != nil {
			return nil, err
		}
		if len(cfg.C2PublicKey) != 0 {
			return nil, configErr("C2PublicKey is only used in PK mode")
		}
		st.key = cp(key)
	} else {
		var ident core.Identity
		if cfg.Password != "" {
			ident, err = set.pk.IdentityFromSeed(key)
		} else {
			ident, err = set.pk.ParseIdentity(key)
		}
		if err != nil {
			return nil, fmt.Errorf("client: identity key: %w", wrapKeyErr(err))
		}
		if st.ident, err = bindIdentity(set.pk, ident, id); err != nil {
			return nil, err
		}
		if err := set.pk.CheckC2PublicKey(cfg.C2PublicKey); err != nil {
			return nil, fmt.Errorf("client: c2 public key: %w", wrapKeyErr(err))
		}
		st.c2Pub = cp(cfg.C2PublicKey)
	}
	return newPersistedClient(set, st)
}

// newPersistedClient is newClient for a freshly built state (New, the e4go
// import): the state is written at once when the client persists, so a
// restart finds what the caller configured.
func newPersistedClient(set *settings, st *state) (*Client, error) {
	c, err := newClient(set, st)
	if err != nil {
		return nil, err
	}
	if set.statePath != "" {
		if err := c.writeState(st, true); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func newClient(set *settings, st *state) (*Client, error) {
	c := &Client{set: set, controlTopic: core.ControlTopic(st.id)}
	c.st.Store(st)
	if set.mode == core.PubKey && set.unknownSigner == AcceptUnknownSignerUnverified {
		if err := c.setupUnverified(st); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func resolveID(s core.Suite, name string, id []byte) ([]byte, error) {
	switch {
	case name == "" && len(id) == 0:
		return nil, configErr("no client name or id")
	case name != "":
		if err := core.ValidateName(name); err != nil {
			return nil, err
		}
		nid := s.ID(name)
		if len(id) != 0 && !bytes.Equal(id, nid) {
			return nil, configErr("id does not match name")
		}
		return nid, nil
	}
	if err := core.ValidateID(id); err != nil {
		return nil, err
	}
	return cp(id), nil
}

func checkSymKey(set *settings, key []byte) error {
	if len(key) != set.sizes.Key {
		return fmt.Errorf("%w: symmetric key is %d bytes, want %d", ErrInvalidKey, len(key), set.sizes.Key)
	}
	if allZero(key) {
		return fmt.Errorf("%w: all-zero symmetric key", ErrInvalidKey)
	}
	return nil
}

// wrapKeyErr makes sure a key parsing error wraps ErrInvalidKey.
func wrapKeyErr(err error) error {
	if errors.Is(err, ErrInvalidKey) || errors.Is(err, ErrInvalidPassword) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrInvalidKey, err)
}

// bindIdentity returns ident bound to the client id it signs as. E4 ids
// come from names, not keys, so every PK suite binds the id to the key
// (core.IdentityBinder); an identity already bound to id is kept as is.
func bindIdentity(s core.Suite, ident core.Identity, id []byte) (core.Identity, error) {
	if ci, ok := ident.(core.ClientIdentity); ok && bytes.Equal(ci.ClientID(), id) {
		return ident, nil
	}
	b, ok := s.(core.IdentityBinder)
	if !ok {
		return nil, configErr("suite %s cannot bind an identity to a client id", s.Name())
	}
	bound, err := b.BindIdentity(ident, cp(id))
	if err != nil {
		return nil, fmt.Errorf("client: bind identity to client id: %w", err)
	}
	return bound, nil
}

// ID returns a copy of the client id.
func (c *Client) ID() []byte { return cp(c.st.Load().id) }

// ControlTopic returns the topic C2 sends this client's commands to.
func (c *Client) ControlTopic() string { return c.controlTopic }

// Suite returns the client's suite.
func (c *Client) Suite() core.Suite { return c.set.suite }

// Mode returns the client's mode.
func (c *Client) Mode() core.Mode { return c.set.mode }

// StatePath returns the state file path ("" when not persisted).
func (c *Client) StatePath() string { return c.set.statePath }

// PublicKey returns the public key C2 registers for this client (PK mode;
// nil in SK mode).
func (c *Client) PublicKey() []byte {
	if id := c.st.Load().ident; id != nil {
		return id.PublicKey()
	}
	return nil
}

// SigningPublicKey returns the key peers verify this client's messages
// with, as SetPubKey carries it (PK mode; nil in SK mode).
func (c *Client) SigningPublicKey() []byte {
	if id := c.st.Load().ident; id != nil {
		return id.SigningPublicKey()
	}
	return nil
}

// State returns a deep copy of the current state. It holds secret keys.
func (c *Client) State() State { return c.snapshot(c.st.Load()) }

// HasTopicKey reports whether the client has a key for topic.
func (c *Client) HasTopicKey(topic string) bool {
	_, ok := c.st.Load().topics[string(c.set.suite.HashTopic(topic))]
	return ok
}

// ProtectMessage protects an application payload for topic with the
// current topic key: SK, the suite's SK layout (an empty payload is refused
// with ErrEmptyPayload since no receiver accepts it); PK, signed by the
// client identity. Without a key it fails with ErrTopicKeyMissing, or
// returns the payload unchanged under PassthroughMissingKey.
func (c *Client) ProtectMessage(payload []byte, topic string) ([]byte, error) {
	if err := core.ValidateTopic(topic); err != nil {
		return nil, err
	}
	st := c.st.Load()
	e, ok := st.topics[string(c.set.suite.HashTopic(topic))]
	if !ok {
		if c.set.missingKey == PassthroughMissingKey {
			return cp(payload), nil
		}
		return nil, fmt.Errorf("%w: topic %q", ErrTopicKeyMissing, topic)
	}
	if allZero(e.key) {
		// The reference refuses it too; an all-zero key protects nothing.
		return nil, fmt.Errorf("%w: topic %q has an all-zero key", ErrInvalidKey, topic)
	}
	now := c.set.clock()
	if c.set.mode == core.SymKey {
		if len(payload) == 0 {
			return nil, ErrEmptyPayload
		}
		return c.set.suite.Protect(e.key, payload, now)
	}
	return c.set.pk.ProtectSigned(st.ident, e.key, payload, now)
}

// Unprotect handles a message received on topic. On the control topic the
// message is a C2 command: it is authenticated, decoded, applied and
// persisted, and Unprotect returns isCommand=true and no payload (isCommand
// is also true when a command is refused). On any other topic it returns
// the application payload. Errors wrap the sentinels of this package.
func (c *Client) Unprotect(protected []byte, topic string) (payload []byte, isCommand bool, err error) {
	m, err := c.UnprotectMessage(protected, topic)
	return m.Payload, m.IsCommand, err
}

// UnprotectMessage is Unprotect with details: the command applied, or the
// sender of a PK message and whether its signature was verified.
func (c *Client) UnprotectMessage(protected []byte, topic string) (Message, error) {
	if topic == c.controlTopic {
		code, err := c.handleCommand(protected)
		return Message{IsCommand: true, Command: code, Verified: err == nil}, err
	}
	if err := core.ValidateTopic(topic); err != nil {
		return Message{}, err
	}
	return c.unprotectApp(protected, topic)
}

func (c *Client) unprotectApp(protected []byte, topic string) (Message, error) {
	st := c.st.Load()
	e, ok := st.topics[string(c.set.suite.HashTopic(topic))]
	if !ok {
		if c.set.missingKey == PassthroughMissingKey {
			return Message{Payload: cp(protected)}, nil
		}
		return Message{}, fmt.Errorf("%w: topic %q", ErrTopicKeyMissing, topic)
	}
	if allZero(e.key) {
		return Message{}, fmt.Errorf("%w: topic %q has an all-zero key", ErrInvalidKey, topic)
	}
	now := c.set.clock()
	open := func(key []byte) (Message, error) {
		if c.set.mode == core.SymKey {
			p, err := c.set.suite.Unprotect(key, protected, now, c.set.window)
			return Message{Payload: p, Verified: err == nil}, err
		}
		return c.openSigned(st, key, protected, now)
	}
	m, err := open(e.key)
	if err == nil || !errors.Is(err, ErrNotAuthentic) || e.prev == nil || allZero(e.prev) {
		return m, err
	}
	// Key transition: the current key does not authenticate the message;
	// the previous one may, while it is within the transition period.
	pm, perr := open(e.prev)
	if perr != nil {
		// Fails with both keys: a forgery or a key we never had. Report
		// the current key's error (deliberate difference 3: the reference
		// says TimestampTooOld here once the previous key expired).
		return m, err
	}
	if c.prevValid(e, now) {
		return pm, nil
	}
	return Message{}, fmt.Errorf("%w: message under the previous topic key, replaced %s ago (transition period %s)",
		ErrTimestampTooOld, now.Sub(e.replacedAt).Truncate(time.Second), c.set.transition)
}

// prevValid: the previous key is usable iff
// now - transition <= replacedAt <= now, as the reference checks it.
func (c *Client) prevValid(e topicEntry, now time.Time) bool {
	return !e.replacedAt.Before(now.Add(-c.set.transition)) && !e.replacedAt.After(now)
}

// openSigned opens a PK application message with the snapshot's pubkeys
// table; no lock is held (the snapshot is immutable).
func (c *Client) openSigned(st *state, key, protected []byte, now time.Time) (Message, error) {
	signer := func(id []byte) ([]byte, error) {
		if k, ok := st.pubKeys[string(id)]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("%w: sender %x", ErrPubKeyNotFound, id)
	}
	p, sender, err := c.set.pk.UnprotectSigned(key, protected, now, c.set.window, signer)
	if err == nil {
		return Message{Payload: p, Sender: sender, Verified: true}, nil
	}
	if c.unverified != nil && errors.Is(err, ErrPubKeyNotFound) {
		// Only reached when the sender id is not in the table: known
		// senders are always verified.
		p, sender, err = c.unverified(key, protected, now, c.set.window)
		if err != nil {
			return Message{}, err
		}
		return Message{Payload: p, Sender: sender, Verified: false}, nil
	}
	return Message{}, err
}

// UnverifiedOpener may be implemented by a PK suite to support the
// AcceptUnknownSignerUnverified policy: it checks length and timestamp and
// decrypts a PK message with the topic key, without verifying the
// signature, returning the plaintext and the claimed sender id.
type UnverifiedOpener interface {
	UnprotectUnverified(topicKey, protected []byte, now time.Time, w core.Window) (plain, sender []byte, err error)
}

// setupUnverified prepares the unverified opener of the
// AcceptUnknownSignerUnverified policy. Without an UnverifiedOpener, it
// falls back to the layout every suite whose PK message embeds its SK
// message uses (LE64(ts) | id(16) | SK body | signature), but only after
// proving on a probe message that this suite really has that layout; a
// suite that binds more than the timestamp into the AEAD fails the probe
// and the policy is refused.
func (c *Client) setupUnverified(st *state) error {
	if o, ok := c.set.suite.(UnverifiedOpener); ok {
		c.unverified = o.UnprotectUnverified
		return nil
	}
	sigLen := c.set.sizes.Signature
	strip := func(protected []byte) ([]byte, []byte, error) {
		if len(protected) < core.TimestampLen+core.IDLen+sigLen {
			return nil, nil, fmt.Errorf("%w: %d bytes", ErrInvalidProtectedLen, len(protected))
		}
		sender := cp(protected[core.TimestampLen : core.TimestampLen+core.IDLen])
		sk := make([]byte, 0, len(protected)-core.IDLen-sigLen)
		sk = append(sk, protected[:core.TimestampLen]...)
		sk = append(sk, protected[core.TimestampLen+core.IDLen:len(protected)-sigLen]...)
		return sk, sender, nil
	}
	probeKey, err := c.set.suite.GenerateKey()
	if err != nil {
		return err
	}
	probe := []byte("e4 client: unverified-layout probe")
	now := time.Unix(c.set.clock().Unix(), 0)
	signed, err := c.set.pk.ProtectSigned(st.ident, probeKey, probe, now)
	if err != nil {
		return fmt.Errorf("client: unknown-signer policy probe: %w", err)
	}
	sk, sender, err := strip(signed)
	if err == nil && bytes.Equal(sender, st.id) {
		var plain []byte
		plain, err = c.set.suite.Unprotect(probeKey, sk, now, c.set.window)
		if err == nil && bytes.Equal(plain, probe) {
			c.unverified = func(key, protected []byte, now time.Time, w core.Window) ([]byte, []byte, error) {
				sk, sender, err := strip(protected)
				if err != nil {
					return nil, nil, err
				}
				p, err := c.set.suite.Unprotect(key, sk, now, w)
				return p, sender, err
			}
			return nil
		}
	}
	return fmt.Errorf("%w: suite %s cannot open PK messages without their signature (policy AcceptUnknownSignerUnverified)",
		ErrUnsupportedOperation, c.set.suite.Name())
}

// MQTTCredential returns the username and password this device presents to
// the C2's embedded broker (see package client/credential): the SK password
// is derived from the current identity key, the PK password is signed at
// the client's clock and expires, so compute it at every connection.
func (c *Client) MQTTCredential() (username, password string, err error) {
	st := c.st.Load()
	now := c.set.clock()
	username = credential.Username(st.id)
	if st.ident != nil {
		password, err = credential.PKPassword(c.set.pk, st.ident, st.id, now)
		if err != nil {
			return "", "", fmt.Errorf("client: mqtt credential: %w", err)
		}
		return username, password, nil
	}
	return username, credential.SKPassword(st.key, st.id), nil
}

// SealAck protects an acknowledgement body (package client/ack) as this
// device: SK with the identity key, PK signed by the identity under
// credential.AuthKey, timestamped with the client's clock.
func (c *Client) SealAck(body string) ([]byte, error) {
	st := c.st.Load()
	now := c.set.clock()
	if st.ident != nil {
		p, err := c.set.pk.ProtectSigned(st.ident, credential.AuthKey, []byte(body), now)
		if err != nil {
			return nil, fmt.Errorf("client: ack: %w", err)
		}
		return p, nil
	}
	p, err := c.set.suite.Protect(st.key, []byte(body), now)
	if err != nil {
		return nil, fmt.Errorf("client: ack: %w", err)
	}
	return p, nil
}
