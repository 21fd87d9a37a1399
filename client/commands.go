package client

import (
	"bytes"
	"fmt"
	"time"

	"github.com/e4c2/e4c2/suites/core"
)

// handleCommand authenticates, decodes and applies a protected command.
func (c *Client) handleCommand(protected []byte) (core.CommandCode, error) {
	c.cmdMu.Lock()
	defer c.cmdMu.Unlock()
	st := c.st.Load()
	now := c.set.clock()
	var plain []byte
	var err error
	if c.set.mode == core.SymKey {
		plain, err = c.set.suite.Unprotect(st.key, protected, now, c.set.window)
	} else {
		plain, err = c.set.pk.UnprotectCommand(st.ident, st.c2Pub, protected, now, c.set.window)
	}
	if err != nil {
		return 0, fmt.Errorf("client: command: %w", err)
	}
	cmd, err := core.DecodeCommand(plain, c.set.sizes, c.set.mode)
	if err != nil {
		var code core.CommandCode
		if len(plain) > 0 {
			code = core.CommandCode(plain[0])
		}
		return code, fmt.Errorf("client: command: %w", err)
	}
	return cmd.Code, c.applyLocked(st, cmd, now)
}

// ApplyCommand applies a decoded command to the state WITHOUT any C2
// authentication, and persists the result. It is meant for provisioning in
// a trusted environment (pre-keying, a filler device) and for tools; never
// feed it data received from the network: use Unprotect.
func (c *Client) ApplyCommand(cmd core.Command) error {
	// Re-encode and decode so that local commands get exactly the checks
	// of received ones.
	b, err := cmd.Encode(c.set.sizes, c.set.mode)
	if err != nil {
		return err
	}
	if cmd, err = core.DecodeCommand(b, c.set.sizes, c.set.mode); err != nil {
		return err
	}
	c.cmdMu.Lock()
	defer c.cmdMu.Unlock()
	return c.applyLocked(c.st.Load(), cmd, c.set.clock())
}

// applyLocked computes the next state, persists it, then publishes it; on
// any error the state is unchanged (in memory and on disk). c.cmdMu is held.
func (c *Client) applyLocked(st *state, cmd core.Command, now time.Time) error {
	next, err := c.apply(st, cmd, now)
	if err != nil {
		return fmt.Errorf("client: %s: %w", cmd.Code, err)
	}
	if next == st {
		return nil
	}
	if c.set.statePath != "" {
		if err := c.writeState(next, false); err != nil {
			return fmt.Errorf("client: %s not applied: %w", cmd.Code, err)
		}
	}
	c.st.Store(next)
	return nil
}

// apply returns the state after cmd; st itself when nothing changes.
func (c *Client) apply(st *state, cmd core.Command, now time.Time) (*state, error) {
	if cmd.Code.PKOnly() && c.set.mode != core.PubKey {
		return nil, fmt.Errorf("%w: PK-only command in SK mode", ErrUnsupportedOperation)
	}
	switch cmd.Code {
	case core.CmdRemoveTopic:
		if _, ok := st.topics[string(cmd.TopicHash)]; !ok {
			return st, nil // idempotent, as in the reference
		}
		n := st.clone()
		delete(n.topics, string(cmd.TopicHash)) // both keys go
		return n, nil

	case core.CmdResetTopics:
		if len(st.topics) == 0 {
			return st, nil
		}
		n := st.clone()
		n.topics = map[string]topicEntry{}
		return n, nil

	case core.CmdSetIDKey:
		n := st.clone()
		if c.set.mode == core.SymKey {
			if err := checkSymKey(c.set, cmd.Key); err != nil {
				return nil, err
			}
			n.key = cp(cmd.Key)
			return n, nil
		}
		ident, err := c.set.pk.ParseIdentity(cmd.Key)
		if err != nil {
			return nil, wrapKeyErr(err)
		}
		// The suite derives the command key from the identity and the C2
		// key on each command, so replacing the identity is all it takes.
		if n.ident, err = bindIdentity(c.set.pk, ident, st.id); err != nil {
			return nil, err
		}
		return n, nil

	case core.CmdSetTopicKey:
		// An all-zero key is stored, as the reference does (its vectors
		// say so); ProtectMessage and Unprotect refuse to use it.
		old, ok := st.topics[string(cmd.TopicHash)]
		if ok && equalKeys(old.key, cmd.Key) {
			return st, nil // same key: no transition entry, nothing changes
		}
		n := st.clone()
		e := topicEntry{key: cp(cmd.Key)}
		if ok {
			e.prev, e.replacedAt = old.key, time.Unix(now.Unix(), 0)
		}
		n.topics[string(cmd.TopicHash)] = e
		return n, nil

	case core.CmdRemovePubKey:
		if _, ok := st.pubKeys[string(cmd.ID)]; !ok {
			return nil, fmt.Errorf("%w: no public key for id %x", ErrPubKeyNotFound, cmd.ID)
		}
		n := st.clone()
		delete(n.pubKeys, string(cmd.ID))
		return n, nil

	case core.CmdResetPubKeys:
		if len(st.pubKeys) == 0 {
			return st, nil
		}
		n := st.clone()
		n.pubKeys = map[string][]byte{}
		return n, nil

	case core.CmdSetPubKey:
		if err := c.checkSigningPublicKey(cmd.Key); err != nil {
			// The reference ignores an invalid key here and reports
			// success (vector "SetPubKey with all-zero pubkey"); we keep
			// that result: the state is unchanged and nothing is stored.
			return st, nil
		}
		if old, ok := st.pubKeys[string(cmd.ID)]; ok && bytes.Equal(old, cmd.Key) {
			return st, nil
		}
		n := st.clone()
		n.pubKeys[string(cmd.ID)] = cp(cmd.Key)
		return n, nil

	case core.CmdSetC2Key:
		if err := c.set.pk.CheckC2PublicKey(cmd.Key); err != nil {
			return nil, wrapKeyErr(err)
		}
		n := st.clone()
		n.c2Pub = cp(cmd.Key)
		return n, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrInvalidCommand, cmd.Code)
}

// signingKeyChecker may be implemented by a PK suite to validate the
// signing public key SetPubKey carries.
type signingKeyChecker interface {
	CheckSigningPublicKey(pub []byte) error
}

// checkSigningPublicKey validates a SetPubKey key with the most precise
// check the suite offers: its own checker, or CheckPublicKey when the
// registered public key and the signing key are the same thing.
func (c *Client) checkSigningPublicKey(pub []byte) error {
	if len(pub) != c.set.sizes.SigningPublic {
		return fmt.Errorf("%w: signing public key is %d bytes", ErrInvalidKey, len(pub))
	}
	if ch, ok := c.set.suite.(signingKeyChecker); ok {
		return ch.CheckSigningPublicKey(pub)
	}
	if c.set.sizes.PublicKey == c.set.sizes.SigningPublic {
		return c.set.pk.CheckPublicKey(pub)
	}
	if allZero(pub) {
		return fmt.Errorf("%w: all-zero signing public key", ErrInvalidKey)
	}
	return nil
}
