package sealing

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"crypto/pbkdf2"

	"golang.org/x/crypto/argon2"
)

// KeySize is the size of the master key, the KEK and every DEK.
const KeySize = 32

// KDF names a passphrase stretching function; the name is stored in the
// keyring so the same function is used at every open.
type KDF string

const (
	// KDFArgon2id is the default passphrase KDF.
	KDFArgon2id KDF = "argon2id"
	// KDFPBKDF2SHA256 is the passphrase KDF of the FIPS suite.
	KDFPBKDF2SHA256 KDF = "pbkdf2-sha256"
)

// KDFForSuite returns the passphrase KDF to use with a crypto suite: PBKDF2
// for "fips" (Argon2id is not FIPS-approved), Argon2id otherwise.
func KDFForSuite(suite string) KDF {
	if suite == "fips" {
		return KDFPBKDF2SHA256
	}
	return KDFArgon2id
}

// KDFParams are the parameters of a passphrase derivation, stored in the
// keyring beside the salt.
type KDFParams struct {
	Name       KDF    `json:"name"`
	Salt       []byte `json:"salt"`
	Time       uint32 `json:"time,omitempty"`       // Argon2id passes
	MemoryKiB  uint32 `json:"memory_kib,omitempty"` // Argon2id memory
	Threads    uint8  `json:"threads,omitempty"`    // Argon2id lanes
	Iterations int    `json:"iterations,omitempty"` // PBKDF2 iterations
}

// SaltSize is the size of the random passphrase salt.
const SaltSize = 16

// DefaultKDFParams returns the parameters of kdf (without salt):
// Argon2id t=3, m=64 MiB, p=4; PBKDF2-HMAC-SHA256 with 600,000 iterations.
func DefaultKDFParams(kdf KDF) (KDFParams, error) {
	switch kdf {
	case KDFArgon2id:
		return KDFParams{Name: kdf, Time: 3, MemoryKiB: 64 * 1024, Threads: 4}, nil
	case KDFPBKDF2SHA256:
		return KDFParams{Name: kdf, Iterations: 600_000}, nil
	}
	return KDFParams{}, fmt.Errorf("sealing: unknown kdf %q", kdf)
}

// derive stretches pass with p. The parameters come from a stored keyring,
// so they are bounded before use.
func (p *KDFParams) derive(pass []byte) ([]byte, error) {
	if len(p.Salt) < SaltSize {
		return nil, fmt.Errorf("%w: kdf salt of %d bytes", ErrBadKeyring, len(p.Salt))
	}
	switch p.Name {
	case KDFArgon2id:
		if p.Time < 1 || p.Time > 100 || p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > 1<<20 || p.Threads < 1 {
			return nil, fmt.Errorf("%w: argon2id parameters out of range", ErrBadKeyring)
		}
		return argon2.IDKey(pass, p.Salt, p.Time, p.MemoryKiB, p.Threads, KeySize), nil
	case KDFPBKDF2SHA256:
		if p.Iterations < 1000 || p.Iterations > 100_000_000 {
			return nil, fmt.Errorf("%w: pbkdf2 iterations out of range", ErrBadKeyring)
		}
		// crypto/pbkdf2 takes the password as a string: that copy cannot
		// be zeroed, a known limit of the standard API.
		k, err := pbkdf2.Key(sha256.New, string(pass), p.Salt, p.Iterations, KeySize)
		if err != nil {
			return nil, fmt.Errorf("sealing: pbkdf2: %w", err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("%w: unknown kdf %q", ErrBadKeyring, p.Name)
}

// MasterKey is where the KEK comes from: 32 key bytes, or a passphrase
// that the keyring's KDF parameters stretch. It never prints its secret.
type MasterKey struct {
	mu   sync.Mutex
	raw  []byte // KeySize bytes, or nil
	pass []byte // passphrase, or nil
	kdf  KDF    // KDF for a new keyring or a rotation to this passphrase
	// params overrides DefaultKDFParams(kdf) for new keyrings (tests).
	params *KDFParams
}

// String hides the secret from fmt and logs.
func (m *MasterKey) String() string { return "sealing.MasterKey(redacted)" }

// GoString hides the secret from %#v.
func (m *MasterKey) GoString() string { return m.String() }

// MasterKeyFromBytes uses 32 key bytes (copied) as the master key.
func MasterKeyFromBytes(key []byte) (*MasterKey, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("sealing: master key must be %d bytes, got %d", KeySize, len(key))
	}
	return &MasterKey{raw: bytes.Clone(key)}, nil
}

// ErrInsecureKeyFile: the master key file is readable or writable by
// group or others.
var ErrInsecureKeyFile = errors.New("sealing: master key file permissions too open")

// LoadMasterKeyFile reads the master key from a file holding 32 raw bytes
// or 64 hex digits (surrounding white space ignored). The file must not be
// accessible to group or others (0600 or 0400): a key that other local
// users can read protects nothing.
func LoadMasterKeyFile(path string) (*MasterKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("sealing: master key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("sealing: master key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o, want 0600 (chmod 600 %s)", ErrInsecureKeyFile, path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sealing: master key file: %w", err)
	}
	defer clear(b)
	if len(b) == KeySize {
		return MasterKeyFromBytes(b)
	}
	key, err := decodeKeyText(b, false)
	if err != nil {
		return nil, fmt.Errorf("sealing: master key file %s: %w", path, err)
	}
	defer clear(key)
	return MasterKeyFromBytes(key)
}

// MasterKeyFromEnv reads the master key from environment variable name, as
// 64 hex digits or the base64 (standard or URL, padded or not) of 32 bytes.
func MasterKeyFromEnv(name string) (*MasterKey, error) {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return nil, fmt.Errorf("sealing: environment variable %s is not set", name)
	}
	key, err := decodeKeyText([]byte(v), true)
	if err != nil {
		return nil, fmt.Errorf("sealing: environment variable %s: %w", name, err)
	}
	defer clear(key)
	return MasterKeyFromBytes(key)
}

// decodeKeyText decodes hex (or base64 when allowed) text of a 32-byte key.
// Errors never quote the text.
func decodeKeyText(b []byte, allowBase64 bool) ([]byte, error) {
	s := strings.TrimSpace(string(b))
	if len(s) == 2*KeySize {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	if allowBase64 {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if k, err := enc.DecodeString(s); err == nil && len(k) == KeySize {
				return k, nil
			}
		}
		return nil, fmt.Errorf("not the hex or base64 of a %d-byte key", KeySize)
	}
	return nil, fmt.Errorf("not %d raw bytes or %d hex digits", KeySize, 2*KeySize)
}

// MasterKeyFromPassphrase derives the master key from a passphrase (copied)
// with kdf. For an existing keyring the KDF and parameters stored in it
// are used; kdf applies to new keyrings and to rotations.
func MasterKeyFromPassphrase(pass []byte, kdf KDF) (*MasterKey, error) {
	if len(pass) == 0 {
		return nil, errors.New("sealing: empty passphrase")
	}
	if _, err := DefaultKDFParams(kdf); err != nil {
		return nil, err
	}
	return &MasterKey{pass: bytes.Clone(pass), kdf: kdf}, nil
}

// WithKDFParams returns m using p (salt ignored) instead of the default
// parameters when it creates a keyring or becomes the new master key of a
// rotation. It exists for tests and for deployments that tune the cost; an
// existing keyring always uses its stored parameters.
func (m *MasterKey) WithKDFParams(p KDFParams) *MasterKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := &MasterKey{raw: bytes.Clone(m.raw), pass: bytes.Clone(m.pass), kdf: m.kdf}
	p.Salt = nil
	if m.pass != nil {
		n.kdf = p.Name
	}
	n.params = &p
	return n
}

// newParams returns fresh KDF parameters with a new random salt for a
// passphrase master key, or nil for a raw key.
func (m *MasterKey) newParams(rand func([]byte) error) (*KDFParams, error) {
	if m.pass == nil {
		return nil, nil
	}
	var p KDFParams
	if m.params != nil {
		p = *m.params
	} else {
		var err error
		if p, err = DefaultKDFParams(m.kdf); err != nil {
			return nil, err
		}
	}
	p.Salt = make([]byte, SaltSize)
	if err := rand(p.Salt); err != nil {
		return nil, fmt.Errorf("sealing: salt: %w", err)
	}
	return &p, nil
}

// kek returns the key-encryption key for a keyring made with params (nil
// for a raw master key). The caller zeroes it.
func (m *MasterKey) kek(params *KDFParams) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.raw == nil && m.pass == nil:
		return nil, errors.New("sealing: master key destroyed")
	case params == nil && m.raw != nil:
		return bytes.Clone(m.raw), nil
	case params == nil:
		return nil, fmt.Errorf("%w: the keyring was made with a raw master key, not a passphrase", ErrWrongMasterKey)
	case m.pass == nil:
		return nil, fmt.Errorf("%w: the keyring was made with a passphrase, not a raw master key", ErrWrongMasterKey)
	}
	return params.derive(m.pass)
}

// Destroy zeroes the secret held by m; m is unusable afterwards.
func (m *MasterKey) Destroy() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.raw)
	clear(m.pass)
	m.raw, m.pass = nil, nil
}
