package standard

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha3"
	"errors"
	"fmt"
	"time"

	"github.com/e4c2/e4c2/suites/core"
)

// Offsets in a PK message: LE64(ts) | senderID | SIV | CT | signature.
const (
	pkIDOff  = TimestampSize
	pkSIVOff = pkIDOff + IDSize
	// pkMinIDLen is the shortest message whose signed part holds the
	// whole sender id. Between minPKLen and it the reference panics after
	// verifying; between it and PKOverhead it fails ad hoc (no room for
	// the SIV).
	pkMinIDLen = pkSIVOff + SignatureSize
)

// ProtectSigned returns LE64(ts) | senderID | SIV | CT | Ed25519 signature:
// the SK encryption of msg under topicKey (the sender id is not associated
// data), then the signature over every preceding byte. id must be bound to
// its client id (Identity.WithClientID or any Identity with a ClientID
// method), which the message carries as senderID.
func (s *Suite) ProtectSigned(id core.Identity, topicKey, msg []byte, ts time.Time) ([]byte, error) {
	sid, err := core.SenderID(id)
	if err != nil {
		return nil, err
	}
	ident, err := asIdentity(id)
	if err != nil {
		return nil, err
	}
	c, err := s.cache.Get(topicKey)
	if err != nil {
		return nil, err
	}
	// The signature's room doubles as the counter-mode scratch.
	out := make([]byte, pkSIVOff, PKOverhead+len(msg))
	core.PutTimestamp(out, ts)
	copy(out[pkIDOff:], sid)
	out = c.Seal(out, out[:TimestampSize], msg)
	return append(out, ed25519.Sign(ident.priv, out)...), nil
}

// UnprotectSigned opens a PK message, with the reference's checks in the
// reference's order so that every input fails with the same error kind:
//
//  1. length <= 72 (timestamp + signature): ErrInvalidProtectedLen;
//  2. timestamp window: ErrTimestampTooOld / ErrTimestampInFuture;
//  3. signer lookup by the id at bytes 8..24: ErrPubKeyNotFound;
//  4. Ed25519 signature over all but the last 64 bytes: ErrInvalidSignature;
//  5. length < 88 (no room for the id before the signature; the reference
//     panics here): ErrInvalidProtectedLen;
//  6. length < 104 (no room for the SIV; the reference returns an ad-hoc
//     "too short ciphertext"): ErrTooShortCiphertext;
//  7. AES-SIV under topicKey: ErrNotAuthentic.
//
// Exactly 104 bytes (an empty plaintext) is accepted, as in the reference.
func (s *Suite) UnprotectSigned(topicKey, protected []byte, now time.Time, w core.Window,
	signer func(id []byte) ([]byte, error)) (plain, sender []byte, err error) {
	if err := core.CheckKeyLen("key", topicKey, KeySize); err != nil {
		return nil, nil, err
	}
	n := len(protected)
	if n <= minPKLen {
		return nil, nil, fmt.Errorf("%w: %d bytes, a PK message needs more than %d", core.ErrInvalidProtectedLen, n, minPKLen)
	}
	if err := core.CheckTimestamp(protected, now, w); err != nil {
		return nil, nil, err
	}
	sender = bytes.Clone(protected[pkIDOff:pkSIVOff])
	pub, err := signer(bytes.Clone(sender))
	if err != nil {
		if !errors.Is(err, core.ErrPubKeyNotFound) {
			err = fmt.Errorf("%w: %w", core.ErrPubKeyNotFound, err)
		}
		return nil, nil, err
	}
	// ed25519.Verify would panic on another length.
	if err := core.CheckKeyLen("signer public key", pub, PublicKeySize); err != nil {
		return nil, nil, err
	}
	signed, sig := protected[:n-SignatureSize], protected[n-SignatureSize:]
	if !ed25519.Verify(pub, signed, sig) {
		return nil, nil, core.ErrInvalidSignature
	}
	if n < pkMinIDLen {
		// Deliberate difference 1: the reference panics (slice bounds).
		return nil, nil, fmt.Errorf("%w: %d bytes, a signed PK message needs at least %d", core.ErrInvalidProtectedLen, n, PKOverhead)
	}
	if n < PKOverhead {
		// Deliberate difference 2: the reference's ad-hoc error, named.
		return nil, nil, fmt.Errorf("%w: %d bytes, a signed PK message needs at least %d", core.ErrTooShortCiphertext, n, PKOverhead)
	}
	c, err := s.cache.Get(topicKey)
	if err != nil {
		return nil, nil, err
	}
	plain, err = c.Open(nil, protected[:TimestampSize], signed[pkSIVOff:])
	if err != nil {
		return nil, nil, err
	}
	return plain, sender, nil
}

// SenderID returns a copy of the sender id of a PK message without checking
// anything else. Messages the reference would refuse on length alone
// (<= 72 bytes) give ErrInvalidProtectedLen.
func (*Suite) SenderID(protected []byte) ([]byte, error) {
	if len(protected) <= minPKLen {
		return nil, fmt.Errorf("%w: %d bytes, a PK message needs more than %d", core.ErrInvalidProtectedLen, len(protected), minPKLen)
	}
	return bytes.Clone(protected[pkIDOff:pkSIVOff]), nil
}

// C2CommandKey returns the key C2 protects commands to a client with:
// SHA3-256(X25519(c2_private, mont(clientPub))), clientPub being the
// client's Ed25519 public key.
func (*Suite) C2CommandKey(c2 core.C2Key, clientPub []byte) ([]byte, error) {
	k, err := asC2Key(c2)
	if err != nil {
		return nil, err
	}
	u, err := MontgomeryPublicKey(clientPub)
	if err != nil {
		return nil, err
	}
	peer, err := ecdh.X25519().NewPublicKey(u)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", core.ErrInvalidKey, err)
	}
	return agree(k.priv, peer)
}

// ClientCommandKey is the client side of C2CommandKey:
// SHA3-256(X25519(clamp(SHA-512(seed)[:32]), c2Pub)). A client computes it
// once per (identity, C2 key) and can then open commands with Unprotect.
func (*Suite) ClientCommandKey(id core.Identity, c2Pub []byte) ([]byte, error) {
	ident, err := asIdentity(id)
	if err != nil {
		return nil, err
	}
	if err := core.CheckKeyLen("C2 public key", c2Pub, C2PublicKeySize); err != nil {
		return nil, err
	}
	peer, err := ecdh.X25519().NewPublicKey(c2Pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", core.ErrInvalidKey, err)
	}
	return agree(ident.xpriv, peer)
}

// agree hashes the X25519 shared point; crypto/ecdh refuses an all-zero
// point (a small-order peer key), which would make the key public.
func agree(priv *ecdh.PrivateKey, peer *ecdh.PublicKey) ([]byte, error) {
	shared, err := priv.ECDH(peer)
	if err != nil {
		return nil, fmt.Errorf("%w: X25519 agreement: small-order public key", core.ErrInvalidKey)
	}
	defer clear(shared)
	k := sha3.Sum256(shared)
	return k[:], nil
}

// ProtectCommand protects cmd for the client that registered clientPub:
// the SK layout under C2CommandKey. Command keys bypass the key cache (one
// per client, used rarely).
func (s *Suite) ProtectCommand(c2 core.C2Key, clientPub, cmd []byte, ts time.Time) ([]byte, error) {
	key, err := s.C2CommandKey(c2, clientPub)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	c, err := NewSIV(key)
	if err != nil {
		return nil, err
	}
	return sealSK(c, cmd, ts), nil
}

// UnprotectCommand opens a command on the client side. The message checks
// (length, then window) come before the key agreement, as the reference
// (which holds the agreed key already) orders them; then AES-SIV.
func (s *Suite) UnprotectCommand(id core.Identity, c2Pub, protected []byte, now time.Time, w core.Window) ([]byte, error) {
	if err := core.CheckKeyLen("C2 public key", c2Pub, C2PublicKeySize); err != nil {
		return nil, err
	}
	if err := checkSK(protected, now, w); err != nil {
		return nil, err
	}
	key, err := s.ClientCommandKey(id, c2Pub)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	c, err := NewSIV(key)
	if err != nil {
		return nil, err
	}
	return openSK(c, protected)
}
