package fips

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha3"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/e4c2/e4c2/suites/core"
)

// commandKeyLabel starts the FixedInfo of the command-key derivation.
const commandKeyLabel = "e4c2/fips/command-key-v1"

// Offsets in a PK message: LE64(ts) | senderID | nonce | CT | tag | sig.
const (
	pkIDOff  = core.TimestampLen
	pkBoxOff = pkIDOff + core.IDLen // start of nonce || CT || tag
)

// ProtectSigned returns LE64(ts) | senderID | nonce | CT | tag | sig:
// AES-256-GCM of msg under topicKey with associated data ts || senderID, then
// an ECDSA P-256 signature over SHA-256 of every preceding byte, encoded as
// the fixed 64-byte r || s. senderID is the client id the identity is bound
// to: Identity.WithClientID, or any core.Identity with a ClientID() []byte
// method (the convention of every suite, e.g. suitetest.BoundIdentity).
func (*Suite) ProtectSigned(id core.Identity, topicKey, msg []byte, ts time.Time) ([]byte, error) {
	priv, err := signingKeyOf(id)
	if err != nil {
		return nil, err
	}
	sid, err := core.SenderID(id)
	if err != nil {
		return nil, err
	}
	out := make([]byte, pkBoxOff, PKOverhead+len(msg))
	core.PutTimestamp(out, ts)
	copy(out[pkIDOff:], sid)
	out, err = seal(topicKey, out, msg, out[:pkBoxOff])
	if err != nil {
		return nil, err
	}
	sig, err := signRaw(priv, out)
	if err != nil {
		return nil, err
	}
	return append(out, sig...), nil
}

// UnprotectSigned checks a PK message in this order: length (at least
// PKOverhead bytes; exactly PKOverhead is an empty plaintext and is
// accepted), timestamp window, signer lookup by sender id, signature, then
// decryption. It returns the plaintext and a copy of the sender id.
func (*Suite) UnprotectSigned(topicKey, protected []byte, now time.Time, w core.Window,
	signer func(id []byte) ([]byte, error)) (plain, sender []byte, err error) {
	if len(protected) < PKOverhead {
		return nil, nil, fmt.Errorf("%w: %d bytes, a PK message needs at least %d", core.ErrInvalidProtectedLen, len(protected), PKOverhead)
	}
	if err := core.CheckTimestamp(protected, now, w); err != nil {
		return nil, nil, err
	}
	sender = append([]byte(nil), protected[pkIDOff:pkBoxOff]...)
	if signer == nil {
		return nil, nil, fmt.Errorf("%w: no signer lookup", core.ErrPubKeyNotFound)
	}
	pubBytes, err := signer(append([]byte(nil), sender...))
	if err != nil {
		if errors.Is(err, core.ErrPubKeyNotFound) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w: %w", core.ErrPubKeyNotFound, err)
	}
	pub, err := parseSigningPublic(pubBytes)
	if err != nil {
		return nil, nil, err
	}
	sigOff := len(protected) - SigSize
	if !verifyRaw(pub, protected[:sigOff], protected[sigOff:]) {
		return nil, nil, core.ErrInvalidSignature
	}
	plain, err = open(topicKey, protected[pkBoxOff:sigOff], protected[:pkBoxOff])
	if err != nil {
		return nil, nil, err
	}
	return plain, sender, nil
}

// SenderID returns a copy of the sender id of a PK message without checking
// anything but the length.
func (*Suite) SenderID(protected []byte) ([]byte, error) {
	if len(protected) < PKOverhead {
		return nil, fmt.Errorf("%w: %d bytes, a PK message needs at least %d", core.ErrInvalidProtectedLen, len(protected), PKOverhead)
	}
	return append([]byte(nil), protected[pkIDOff:pkBoxOff]...), nil
}

// signRaw signs SHA-256(msg) and returns the fixed 64-byte r || s form.
func signRaw(priv *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	digest := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, priv, digest[:])
	if err != nil {
		return nil, fmt.Errorf("fips: ecdsa sign: %w", err)
	}
	sig := make([]byte, SigSize)
	r.FillBytes(sig[:SigSize/2])
	s.FillBytes(sig[SigSize/2:])
	return sig, nil
}

// verifyRaw checks a fixed 64-byte r || s signature over SHA-256(msg).
// ecdsa.Verify rejects r or s equal to zero or not below n.
func verifyRaw(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	if len(sig) != SigSize {
		return false
	}
	digest := sha256.Sum256(msg)
	r := new(big.Int).SetBytes(sig[:SigSize/2])
	s := new(big.Int).SetBytes(sig[SigSize/2:])
	return ecdsa.Verify(pub, digest[:], r, s)
}

// commandKey is the NIST SP 800-56C rev. 2 one-step KDF (option 1, H =
// SHA3-256, one block) over the ECDH shared secret z:
//
//	SHA3-256(BE32(1) || z || "e4c2/fips/command-key-v1" || c2Pub || clientAgreePub)
//
// FixedInfo binds the key to both public keys, as SP 800-56A recommends.
func commandKey(priv *ecdh.PrivateKey, peer *ecdh.PublicKey, c2Pub, clientAgreePub []byte) ([]byte, error) {
	z, err := priv.ECDH(peer)
	if err != nil {
		return nil, fmt.Errorf("%w: ecdh: %w", core.ErrInvalidKey, err)
	}
	h := sha3.New256()
	var ctr [4]byte
	binary.BigEndian.PutUint32(ctr[:], 1)
	h.Write(ctr[:])
	h.Write(z)
	h.Write([]byte(commandKeyLabel))
	h.Write(c2Pub)
	h.Write(clientAgreePub)
	clear(z)
	return h.Sum(nil), nil
}

// C2CommandKey returns the 32-byte key that protects commands from the C2
// key c2 to the client that registered the 130-byte public key clientPub.
func (*Suite) C2CommandKey(c2 core.C2Key, clientPub []byte) ([]byte, error) {
	k, err := asC2Key(c2)
	if err != nil {
		return nil, err
	}
	_, agreePub, err := parsePublic(clientPub)
	if err != nil {
		return nil, err
	}
	return commandKey(k.priv, agreePub, k.priv.PublicKey().Bytes(), clientPub[PointSize:])
}

// ClientCommandKey is the client side of C2CommandKey: the same 32 bytes,
// from the client's ECDH key and the 65-byte C2 public key.
func (*Suite) ClientCommandKey(id core.Identity, c2Pub []byte) ([]byte, error) {
	ident, err := asIdentity(id)
	if err != nil {
		return nil, err
	}
	peer, err := parseC2Public(c2Pub)
	if err != nil {
		return nil, err
	}
	return commandKey(ident.agree, peer, c2Pub, ident.agreePb)
}

// ProtectCommand protects cmd in the SK layout (LE64(ts) | nonce | CT | tag)
// under the command key of c2 and clientPub.
func (s *Suite) ProtectCommand(c2 core.C2Key, clientPub, cmd []byte, ts time.Time) ([]byte, error) {
	key, err := s.C2CommandKey(c2, clientPub)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	return s.Protect(key, cmd, ts)
}

// UnprotectCommand is the client side of ProtectCommand: length, timestamp
// window, then authenticity, as Unprotect.
func (s *Suite) UnprotectCommand(id core.Identity, c2Pub, protected []byte, now time.Time, w core.Window) ([]byte, error) {
	if len(protected) <= CommandOverhead {
		return nil, fmt.Errorf("%w: %d bytes, a command needs more than %d", core.ErrInvalidProtectedLen, len(protected), CommandOverhead)
	}
	if err := core.CheckTimestamp(protected, now, w); err != nil {
		return nil, err
	}
	key, err := s.ClientCommandKey(id, c2Pub)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	return s.Unprotect(key, protected, now, w)
}
