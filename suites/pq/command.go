package pq

import (
	"crypto/rand"
	"crypto/sha3"
	"fmt"
	"time"

	"github.com/cloudflare/circl/kem/mlkem/mlkem768"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"github.com/e4c2/e4c2/suites/core"
)

// Offsets in a protected command:
// LE64(ts) | ML-KEM ciphertext | SIV | CT | C2 signature.
const (
	cmdCTOff  = core.TimestampLen
	cmdSIVOff = cmdCTOff + KEMCiphertextSize
)

// ProtectCommand protects cmd from C2 to the client that registered
// clientPub: it encapsulates a fresh ML-KEM-768 shared secret ss to the
// client's encapsulation key (ciphertext c), derives the command key
// SHA3-256(ss || c), seals cmd with AES-SIV (key k||k, AD = the 8 ts bytes)
// and signs every preceding byte with C2's ML-DSA-65 key (hedged, context
// ContextCommand). Like Protect, it seals an empty command too (4421
// bytes), which UnprotectCommand refuses by its length.
func (*Suite) ProtectCommand(c2 core.C2Key, clientPub, cmd []byte, ts time.Time) ([]byte, error) {
	var seed [EncapsulationSeedSize]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("pq: encapsulation randomness: %w", err)
	}
	return protectCommand(c2, clientPub, cmd, ts, seed[:], true)
}

// protectCommand is ProtectCommand with the encapsulation randomness
// given. Only ProtectCommand (fresh random encapSeed, hedged signing) and
// the test-only deterministic variant (export_test.go) call it: a reused
// encapSeed reuses the command key.
func protectCommand(c2 core.C2Key, clientPub, cmd []byte, ts time.Time, encapSeed []byte, randomized bool) ([]byte, error) {
	k, err := asC2Key(c2)
	if err != nil {
		return nil, err
	}
	kemPub, err := parseClientKEM(clientPub)
	if err != nil {
		return nil, err
	}
	out := make([]byte, cmdSIVOff, CommandOverhead+len(cmd))
	core.PutTimestamp(out, ts)
	var ss [mlkem768.SharedKeySize]byte
	kemPub.EncapsulateTo(out[cmdCTOff:cmdSIVOff], ss[:], encapSeed)
	key := commandKey(&ss, out[cmdCTOff:cmdSIVOff])
	clear(ss[:])
	out, err = sealSIV(out, key[:], out[:core.TimestampLen], cmd)
	clear(key[:])
	if err != nil {
		return nil, err
	}
	return appendSignature(out, k.priv, ContextCommand, randomized)
}

// commandKey is SHA3-256(ss || c). Hashing the ciphertext in binds the key
// to this encapsulation, as in the X-Wing and HPKE combiners.
func commandKey(ss *[mlkem768.SharedKeySize]byte, c []byte) [32]byte {
	h := sha3.New256()
	_, _ = h.Write(ss[:])
	_, _ = h.Write(c)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// UnprotectCommand checks a command in this order: length (more than
// CommandOverhead bytes: an empty command is refused), the keys, the
// timestamp window, C2's signature (ErrInvalidSignature), then decapsulation
// and decryption (ErrNotAuthentic). The signature is checked before the
// decapsulation so that nothing but C2 can make the client spend a
// decapsulation or probe its ML-KEM key.
func (s *Suite) UnprotectCommand(id core.Identity, c2Pub, protected []byte, now time.Time, w core.Window) ([]byte, error) {
	if len(protected) <= CommandOverhead {
		return nil, fmt.Errorf("pq: %w: %d bytes, a command needs more than %d", core.ErrInvalidProtectedLen, len(protected), CommandOverhead)
	}
	ident, err := asIdentity(id)
	if err != nil {
		return nil, err
	}
	pub, err := s.signingKey(c2Pub, "c2 public key")
	if err != nil {
		return nil, err
	}
	if err := core.CheckTimestamp(protected, now, w); err != nil {
		return nil, fmt.Errorf("pq: %w", err)
	}
	sigOff := len(protected) - SignatureSize
	if !mldsa65.Verify(pub, protected[:sigOff], []byte(ContextCommand), protected[sigOff:]) {
		return nil, fmt.Errorf("pq: command: %w", core.ErrInvalidSignature)
	}
	var ss [mlkem768.SharedKeySize]byte
	ct := protected[cmdCTOff:cmdSIVOff]
	ident.kemPriv.DecapsulateTo(ss[:], ct)
	key := commandKey(&ss, ct)
	clear(ss[:])
	plain, err := openSIV(key[:], protected[:core.TimestampLen], protected[cmdSIVOff:sigOff])
	clear(key[:])
	return plain, err
}
