package fips

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/e4c2/e4c2/suites/core"
)

// Name is the stable suite name persisted in events.
const Name = "fips"

// Byte sizes fixed by the suite (see the package documentation for the
// layouts they describe).
const (
	KeySize           = 32                                                             // AES-256 topic key, SK identity key, identity seed
	NonceSize         = 12                                                             // GCM nonce, random, carried in every message
	TagSize           = 16                                                             // GCM tag
	SKOverhead        = core.TimestampLen + NonceSize + TagSize                        // 36
	PKOverhead        = core.TimestampLen + core.IDLen + NonceSize + TagSize + SigSize // 116
	SeedSize          = 32                                                             // identity seed carried by SetIdKey
	PointSize         = 65                                                             // uncompressed P-256 point
	PublicKeySize     = 2 * PointSize                                                  // ECDSA point || ECDH point
	SigningPublicSize = PointSize                                                      // ECDSA point, carried by SetPubKey
	SigSize           = 64                                                             // ECDSA r || s, 32 bytes each
	C2PrivateSize     = 32                                                             // ECDH P-256 scalar
	C2PublicSize      = PointSize                                                      // ECDH P-256 point, carried by SetC2Key
	CommandOverhead   = SKOverhead
)

// Password derivation parameters. The salt is a fixed domain-separation
// string: every deployment derives the same key from the same password, which
// is what provisioning a device from a password needs (the C2 and the device
// must agree without exchanging anything). 21 bytes satisfies the 128-bit
// minimum salt length that fips140=only enforces.
const (
	PasswordSalt       = "e4c2/fips/password-v1"
	PasswordIterations = 600_000
	MinPasswordLen     = 16
)

// Suite is the FIPS suite. The zero value is ready to use; it holds no state
// and is safe for concurrent use.
type Suite struct{}

var _ core.PKSuite = (*Suite)(nil)

// New returns the FIPS suite.
func New() *Suite { return &Suite{} }

// Name returns "fips".
func (*Suite) Name() string { return Name }

// Modes reports that both SK and PK mode are supported.
func (*Suite) Modes() []core.Mode { return []core.Mode{core.SymKey, core.PubKey} }

// Sizes returns the byte sizes of the suite.
func (*Suite) Sizes() core.Sizes {
	return core.Sizes{
		Key:             KeySize,
		SKOverhead:      SKOverhead,
		PKOverhead:      PKOverhead,
		IdentityKey:     SeedSize,
		PublicKey:       PublicKeySize,
		SigningPublic:   SigningPublicSize,
		Signature:       SigSize,
		C2PublicKey:     C2PublicSize,
		CommandOverhead: CommandOverhead,
	}
}

// ID returns SHA3-256(name)[:16].
func (*Suite) ID(name string) []byte { return core.HashID([]byte(name)) }

// HashTopic returns SHA3-256(topic)[:16].
func (*Suite) HashTopic(topic string) []byte { return core.HashID([]byte(topic)) }

// GenerateKey returns 32 bytes from crypto/rand (the approved DRBG).
func (*Suite) GenerateKey() ([]byte, error) { return core.GenerateKey(Name) }

// DeriveKey derives a 32-byte key (SK identity key or PK identity seed) from a
// password: PBKDF2-HMAC-SHA256 with the fixed salt PasswordSalt and
// PasswordIterations iterations. The password must be valid UTF-8 and at
// least MinPasswordLen bytes long. It takes a fraction of a second on purpose.
func (*Suite) DeriveKey(password string) ([]byte, error) {
	if err := core.CheckPassword(password, MinPasswordLen); err != nil {
		return nil, err
	}
	k, err := pbkdf2.Key(sha256.New, password, []byte(PasswordSalt), PasswordIterations, KeySize)
	if err != nil {
		return nil, fmt.Errorf("fips: pbkdf2: %w", err)
	}
	return k, nil
}

// newAEAD returns AES-256-GCM with random 96-bit nonces under key. Only
// 32-byte keys are accepted: the suite promises AES-256 everywhere.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if err := core.CheckKeyLen("key", key, KeySize); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", core.ErrInvalidKey, err)
	}
	// NewGCMWithRandomNonce draws the nonce inside the FIPS module, the only
	// GCM encryption mode fips140=only allows for arbitrary callers.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("fips: gcm: %w", err)
	}
	return aead, nil
}

// seal appends nonce || CT || tag of msg under key with associated data ad
// to dst, where ad is also a prefix of dst (the header already written).
func seal(key, dst, msg, ad []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return aead.Seal(dst, nil, msg, ad), nil
}

// open decrypts box = nonce || CT || tag under key with associated data ad.
func open(key, box, ad []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, nil, box, ad)
	if err != nil {
		return nil, core.ErrNotAuthentic
	}
	if plain == nil {
		plain = []byte{}
	}
	return plain, nil
}

// Protect returns LE64(ts) | nonce | CT | tag, AES-256-GCM under key with the
// 8 timestamp bytes as associated data. An empty msg gives the 36-byte form,
// which Unprotect refuses (as in the standard suite).
func (*Suite) Protect(key, msg []byte, ts time.Time) ([]byte, error) {
	out := make([]byte, core.TimestampLen, SKOverhead+len(msg))
	core.PutTimestamp(out, ts)
	return seal(key, out, msg, out[:core.TimestampLen])
}

// Unprotect checks, in this order, the length (at most SKOverhead bytes is
// refused: an SK message must carry plaintext), the timestamp window and the
// GCM tag, and returns the plaintext.
func (*Suite) Unprotect(key, protected []byte, now time.Time, w core.Window) ([]byte, error) {
	if len(protected) <= SKOverhead {
		return nil, fmt.Errorf("%w: %d bytes, an SK message needs more than %d", core.ErrInvalidProtectedLen, len(protected), SKOverhead)
	}
	if err := core.CheckTimestamp(protected, now, w); err != nil {
		return nil, err
	}
	return open(key, protected[core.TimestampLen:], protected[:core.TimestampLen])
}
