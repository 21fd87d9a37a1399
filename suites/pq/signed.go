package pq

import (
	"errors"
	"fmt"
	"time"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"github.com/e4c2/e4c2/suites/core"
)

// ML-DSA-65 context strings (FIPS 204 section 5.2, the ctx input of
// ML-DSA.Sign). They separate the two things this suite signs, so that a
// client message signature can never be taken for a C2 command signature,
// nor a signature of this suite for one of another protocol using the same
// key, whatever the bytes.
const (
	ContextMessage = "e4c2/pq/message-v1"
	ContextCommand = "e4c2/pq/command-v1"
)

// Offsets in a PK message: LE64(ts) | senderID | SIV | CT | signature.
const (
	pkIDOff  = core.TimestampLen
	pkSIVOff = pkIDOff + core.IDLen
)

// ProtectSigned returns LE64(ts) | senderID | SIV | CT | signature: AES-SIV
// of msg under topicKey (key k||k, AD = the 8 ts bytes), then a hedged
// (randomized) ML-DSA-65 signature with context ContextMessage over every
// preceding byte. senderID is the client id id is bound to (WithClientID).
func (*Suite) ProtectSigned(id core.Identity, topicKey, msg []byte, ts time.Time) ([]byte, error) {
	return protectSigned(id, topicKey, msg, ts, true)
}

// protectSigned signs hedged (randomized) for ProtectSigned; only the
// test-only deterministic variant (export_test.go) passes false.
func protectSigned(id core.Identity, topicKey, msg []byte, ts time.Time, randomized bool) ([]byte, error) {
	ident, err := asIdentity(id)
	if err != nil {
		return nil, err
	}
	sid, err := core.SenderID(id)
	if err != nil {
		return nil, err
	}
	if err := core.CheckKeyLen("topic key", topicKey, KeySize); err != nil {
		return nil, err
	}
	out := make([]byte, pkSIVOff, PKOverhead+len(msg))
	core.PutTimestamp(out, ts)
	copy(out[pkIDOff:], sid)
	out, err = sealSIV(out, topicKey, out[:core.TimestampLen], msg)
	if err != nil {
		return nil, err
	}
	return appendSignature(out, ident.sigPriv, ContextMessage, randomized)
}

// appendSignature appends the ML-DSA-65 signature of signed (with context
// ctx) to signed, in the spare capacity when there is enough.
func appendSignature(signed []byte, priv *mldsa65.PrivateKey, ctx string, randomized bool) ([]byte, error) {
	n := len(signed)
	out := append(signed, make([]byte, SignatureSize)...)
	if err := mldsa65.SignTo(priv, out[:n], []byte(ctx), randomized, out[n:]); err != nil {
		return nil, fmt.Errorf("pq: sign: %w", err)
	}
	return out, nil
}

// UnprotectSigned checks a PK message in this order: length (at least
// PKOverhead bytes; exactly PKOverhead is an empty plaintext and is
// accepted, as the reference does), timestamp window, signer lookup by
// sender id, signature, then decryption. It returns the plaintext and a
// copy of the sender id.
func (s *Suite) UnprotectSigned(topicKey, protected []byte, now time.Time, w core.Window,
	signer func(id []byte) ([]byte, error)) (plain, sender []byte, err error) {
	if len(protected) < PKOverhead {
		return nil, nil, fmt.Errorf("pq: %w: %d bytes, a PK message needs at least %d", core.ErrInvalidProtectedLen, len(protected), PKOverhead)
	}
	if err := core.CheckKeyLen("topic key", topicKey, KeySize); err != nil {
		return nil, nil, err
	}
	if err := core.CheckTimestamp(protected, now, w); err != nil {
		return nil, nil, fmt.Errorf("pq: %w", err)
	}
	sender = append([]byte(nil), protected[pkIDOff:pkSIVOff]...)
	if signer == nil {
		return nil, nil, fmt.Errorf("pq: %w: no signer lookup", core.ErrPubKeyNotFound)
	}
	pubBytes, err := signer(append([]byte(nil), sender...))
	if err != nil {
		if errors.Is(err, core.ErrPubKeyNotFound) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w: %w", core.ErrPubKeyNotFound, err)
	}
	pub, err := s.signingKey(pubBytes, "signer public key")
	if err != nil {
		return nil, nil, err
	}
	sigOff := len(protected) - SignatureSize
	if !mldsa65.Verify(pub, protected[:sigOff], []byte(ContextMessage), protected[sigOff:]) {
		return nil, nil, fmt.Errorf("pq: %w", core.ErrInvalidSignature)
	}
	plain, err = openSIV(topicKey, protected[:core.TimestampLen], protected[pkSIVOff:sigOff])
	if err != nil {
		return nil, nil, err
	}
	return plain, sender, nil
}

// SenderID returns a copy of the sender id of a PK message without checking
// anything but the length.
func (*Suite) SenderID(protected []byte) ([]byte, error) {
	if len(protected) < PKOverhead {
		return nil, fmt.Errorf("pq: %w: %d bytes, a PK message needs at least %d", core.ErrInvalidProtectedLen, len(protected), PKOverhead)
	}
	return append([]byte(nil), protected[pkIDOff:pkSIVOff]...), nil
}
