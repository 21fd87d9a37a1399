package pq

import (
	"fmt"
	"time"

	"github.com/cloudflare/circl/kem/mlkem/mlkem768"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"golang.org/x/crypto/argon2"

	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/internal/siv"
)

// Sizes of the pq suite, in bytes. doc.go explains each of them.
const (
	KeySize               = core.KeyLen                                                   // topic key, identity seed, C2 seed
	SignatureSize         = mldsa65.SignatureSize                                         // ML-DSA-65 signature (3309)
	SigningPublicKeySize  = mldsa65.PublicKeySize                                         // ML-DSA-65 public key (1952)
	KEMPublicKeySize      = mlkem768.PublicKeySize                                        // ML-KEM-768 encapsulation key (1184)
	KEMCiphertextSize     = mlkem768.CiphertextSize                                       // ML-KEM-768 ciphertext (1088)
	EncapsulationSeedSize = mlkem768.EncapsulationSeedSize                                // ML-KEM-768 encapsulation randomness (32)
	PublicKeySize         = SigningPublicKeySize + KEMPublicKeySize                       // registered client public key (3136)
	C2PublicKeySize       = mldsa65.PublicKeySize                                         // C2 ML-DSA-65 public key (1952)
	SKOverhead            = core.TimestampLen + siv.Overhead                              // 24
	PKOverhead            = core.TimestampLen + core.IDLen + siv.Overhead + SignatureSize // 3349
	CommandOverhead       = core.TimestampLen + KEMCiphertextSize + siv.Overhead + SignatureSize
)

// Argon2id parameters of DeriveKey (RFC 9106 section 4, second recommended
// option: t=3, m=64 MiB, p=4), and its fixed domain salt.
const (
	ArgonTime    = 3
	ArgonMemory  = 64 * 1024 // KiB
	ArgonThreads = 4
	ArgonSalt    = "e4c2/pq/password-v1"
	// MinPasswordLen is the minimum password length in bytes.
	MinPasswordLen = 16
)

// Suite is the post-quantum E4 suite. It is safe for concurrent use; its
// only state is a bounded cache of decoded public keys (see keyCache). New
// returns a ready value, and the zero value works too.
type Suite struct {
	keys keyCache
}

var _ core.PKSuite = (*Suite)(nil)

// New returns the pq suite.
func New() *Suite { return &Suite{} }

// Name returns "pq", the stable name persisted in events.
func (*Suite) Name() string { return "pq" }

// Modes returns only PubKey: in SK mode every key is a symmetric AES-256
// key, which is already quantum-safe, so a pq SK mode would be the standard
// suite under another name. The registry refuses pq+SK with that reason.
func (*Suite) Modes() []core.Mode { return []core.Mode{core.PubKey} }

// Sizes returns the byte sizes of the suite.
func (*Suite) Sizes() core.Sizes {
	return core.Sizes{
		Key:             KeySize,
		SKOverhead:      SKOverhead,
		PKOverhead:      PKOverhead,
		IdentityKey:     KeySize,
		PublicKey:       PublicKeySize,
		SigningPublic:   SigningPublicKeySize,
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
func (*Suite) GenerateKey() ([]byte, error) { return core.GenerateKey("pq") }

// DeriveKey derives a 32-byte key (used as an identity seed) from a
// password with Argon2id (t=3, m=64 MiB, p=4, salt "e4c2/pq/password-v1").
// The salt is a fixed domain label, not a random salt: the same password
// must give the same identity on the device and on the C2 operator's
// machine. That makes precomputation against one deployment's passwords
// possible, hence the 16-byte minimum and the memory-hard parameters.
func (*Suite) DeriveKey(password string) ([]byte, error) {
	if err := core.CheckPassword(password, MinPasswordLen); err != nil {
		return nil, err
	}
	return argon2.IDKey([]byte(password), []byte(ArgonSalt), ArgonTime, ArgonMemory, ArgonThreads, KeySize), nil
}

// Protect seals msg under the 32-byte key in the symmetric layout
// LE64(ts) | SIV | CT (AES-SIV with key k||k, AD = the 8 timestamp bytes).
// pq supports only PK mode, but C2 still protects application traffic and
// any symmetric payload with topic keys in this layout.
func (*Suite) Protect(key, msg []byte, ts time.Time) ([]byte, error) {
	if err := core.CheckKeyLen("topic key", key, KeySize); err != nil {
		return nil, err
	}
	out := make([]byte, core.TimestampLen, SKOverhead+len(msg))
	core.PutTimestamp(out, ts)
	out, err := siv.Seal(out, key, out[:core.TimestampLen], msg)
	if err != nil {
		return nil, fmt.Errorf("pq: protect: %w", err)
	}
	return out, nil
}

// Unprotect checks, in order, the length (24 bytes or fewer is too short:
// an empty plaintext is refused as in the reference), the timestamp window
// and authenticity, and returns the plaintext.
func (*Suite) Unprotect(key, protected []byte, now time.Time, w core.Window) ([]byte, error) {
	if err := core.CheckKeyLen("topic key", key, KeySize); err != nil {
		return nil, err
	}
	if len(protected) <= SKOverhead {
		return nil, fmt.Errorf("pq: %w: %d bytes, need more than %d", core.ErrInvalidProtectedLen, len(protected), SKOverhead)
	}
	if err := core.CheckTimestamp(protected, now, w); err != nil {
		return nil, fmt.Errorf("pq: %w", err)
	}
	return openSIV(key, protected[:core.TimestampLen], protected[core.TimestampLen:])
}

// openSIV decrypts SIV||CT under key with AD = ts, mapping any failure to
// ErrNotAuthentic.
func openSIV(key, ts, sivct []byte) ([]byte, error) {
	pt, err := siv.Open(nil, key, ts, sivct)
	if err != nil {
		return nil, fmt.Errorf("pq: %w", core.ErrNotAuthentic)
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}

// sealSIV appends SIV||CT of msg under key with AD = ts to dst.
func sealSIV(dst, key, ts, msg []byte) ([]byte, error) {
	out, err := siv.Seal(dst, key, ts, msg)
	if err != nil {
		return nil, fmt.Errorf("pq: %w", err)
	}
	return out, nil
}
