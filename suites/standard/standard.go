package standard

import (
	"fmt"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/internal/siv"
)

// Sizes of the standard suite, in bytes. doc.go shows where each one sits.
const (
	// KeySize is a topic key, an SK identity key, a command key and an
	// identity seed.
	KeySize = 32
	// IDSize is a client id or a topic hash: SHA3-256(...)[:16].
	IDSize = core.IDLen
	// TimestampSize is the LE64 Unix-seconds prefix of every message.
	TimestampSize = core.TimestampLen
	// TagSize is the AES-SIV synthetic IV.
	TagSize = siv.Overhead
	// SKOverhead is LE64(ts) + SIV: a protected SK message or command is
	// SKOverhead bytes longer than its plaintext.
	SKOverhead = TimestampSize + TagSize
	// SignatureSize is an Ed25519 signature.
	SignatureSize = 64
	// PKOverhead is LE64(ts) + sender id + SIV + signature.
	PKOverhead = TimestampSize + IDSize + TagSize + SignatureSize
	// PrivateKeySize is the Ed25519 private key SetIdKey carries: seed || pub.
	PrivateKeySize = 64
	// SeedSize is the Ed25519 seed (RFC 8032 private key).
	SeedSize = 32
	// PublicKeySize is the Ed25519 public key a client registers and
	// SetPubKey carries.
	PublicKeySize = 32
	// C2PrivateKeySize and C2PublicKeySize are the X25519 C2 key pair.
	C2PrivateKeySize = 32
	C2PublicKeySize  = 32
	// CommandOverhead is the SK layout: commands are SK messages under the
	// agreed command key.
	CommandOverhead = SKOverhead
	// MinPasswordLen is the shortest password DeriveKey accepts, in bytes.
	MinPasswordLen = 16
)

// Argon2 parameters of DeriveKey (the reference tools' values).
const (
	argonTime    = 1
	argonMemory  = 64 * 1024 // KiB
	argonThreads = 4
)

// minPKLen is the reference's first PK length check: a message of at most
// timestamp + signature bytes is refused before anything else.
const minPKLen = TimestampSize + SignatureSize

// Suite is the standard E4 suite, byte-compatible with the reference e4go
// client. It implements core.PKSuite (and so core.Suite). A Suite keeps a
// small cache of expanded topic keys (see Forget); it is safe for
// concurrent use. The zero value works, without the cache.
type Suite struct {
	cache *siv.Cache
}

// New returns the standard suite.
func New() *Suite { return &Suite{cache: siv.NewCache()} }

var _ core.PKSuite = (*Suite)(nil)

// Name returns "standard".
func (*Suite) Name() string { return "standard" }

// Modes returns SK and PK.
func (*Suite) Modes() []core.Mode { return []core.Mode{core.SymKey, core.PubKey} }

// Sizes returns the byte sizes of the suite.
func (*Suite) Sizes() core.Sizes {
	return core.Sizes{
		Key:             KeySize,
		SKOverhead:      SKOverhead,
		PKOverhead:      PKOverhead,
		IdentityKey:     PrivateKeySize,
		PublicKey:       PublicKeySize,
		SigningPublic:   PublicKeySize,
		Signature:       SignatureSize,
		C2PublicKey:     C2PublicKeySize,
		CommandOverhead: CommandOverhead,
	}
}

// ID returns SHA3-256(name)[:16].
func (*Suite) ID(name string) []byte { return core.HashID([]byte(name)) }

// HashTopic returns SHA3-256(topic)[:16].
func (*Suite) HashTopic(topic string) []byte { return core.HashID([]byte(topic)) }

// GenerateKey returns 32 random bytes from crypto/rand.
func (*Suite) GenerateKey() ([]byte, error) { return core.GenerateKey("standard") }

// DeriveKey derives the 32-byte SK key / Ed25519 seed of a device password
// exactly as the reference tools do: Argon2i v1.3, t=1, m=64 MiB, p=4, no
// salt. Passwords must be valid UTF-8 and at least 16 bytes.
//
// This derivation is weak (Argon2i with one pass and no salt, so one
// precomputation attacks every device) and exists only to provision
// devices compatible with the reference; never use it for keys the C2
// keeps for itself (use Argon2id with a random salt there).
func (*Suite) DeriveKey(password string) ([]byte, error) {
	if err := ValidatePassword(password); err != nil {
		return nil, err
	}
	return argon2.Key([]byte(password), nil, argonTime, argonMemory, argonThreads, KeySize), nil
}

// ValidatePassword applies the reference's password rules: valid UTF-8, at
// least MinPasswordLen bytes.
func ValidatePassword(password string) error {
	return core.CheckPassword(password, MinPasswordLen)
}

// Forget drops key from the suite's cache of expanded keys at once (a key
// otherwise leaves the cache when another key takes its slot). Call it
// when a topic key is removed if the key must not outlive its use in
// this process's memory longer than the caller's own copy.
func (s *Suite) Forget(key []byte) { s.cache.Forget(key) }

// Protect returns LE64(ts) | SIV | CT, the AES-SIV of msg under key with
// the 8 timestamp bytes as the only associated data. An empty msg gives the
// 24-byte form, which the reference (and Unprotect) refuses to open.
func (s *Suite) Protect(key, msg []byte, ts time.Time) ([]byte, error) {
	c, err := s.cache.Get(key)
	if err != nil {
		return nil, err
	}
	return sealSK(c, msg, ts), nil
}

// sealSK writes the SK layout into one output allocation (the counter
// mode's state is the only other one).
func sealSK(c *SIV, msg []byte, ts time.Time) []byte {
	out := make([]byte, TimestampSize, SKOverhead+len(msg))
	core.PutTimestamp(out, ts)
	return c.Seal(out, out[:TimestampSize], msg)
}

// Unprotect opens an SK message. Checks, in the reference's order: length
// (at most 24 bytes: ErrTooShortCiphertext, so an empty plaintext is
// refused), timestamp window (ErrTimestampTooOld / ErrTimestampInFuture),
// then authentication (ErrNotAuthentic).
func (s *Suite) Unprotect(key, protected []byte, now time.Time, w core.Window) ([]byte, error) {
	if err := core.CheckKeyLen("key", key, KeySize); err != nil {
		return nil, err
	}
	if err := checkSK(protected, now, w); err != nil {
		return nil, err
	}
	c, err := s.cache.Get(key)
	if err != nil {
		return nil, err
	}
	return openSK(c, protected)
}

// checkSK runs the length and window checks of the SK layout.
func checkSK(protected []byte, now time.Time, w core.Window) error {
	if len(protected) <= SKOverhead {
		return fmt.Errorf("%w: %d bytes, an SK message needs more than %d", core.ErrTooShortCiphertext, len(protected), SKOverhead)
	}
	return core.CheckTimestamp(protected, now, w)
}

// openSK decrypts a length- and window-checked SK message.
func openSK(c *SIV, protected []byte) ([]byte, error) {
	pt, err := c.Open(nil, protected[:TimestampSize], protected[TimestampSize:])
	if err != nil {
		return nil, err
	}
	return pt, nil
}
