package standard

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"sync"

	"filippo.io/edwards25519"

	"github.com/e4c2/e4c2/suites/core"
)

// Identity is a client's PK identity: an Ed25519 key (the reference's
// seed || pub form) and the X25519 key derived from it for command-key
// agreement, clamp(SHA-512(seed)[:32]) (crypto/ecdh clamps). It may be
// bound to the client id its messages carry (WithClientID). Immutable.
type Identity struct {
	priv  ed25519.PrivateKey
	xpriv *ecdh.PrivateKey
	// Every fmt verb prints "standard.Identity(redacted)", never the key.
	core.Redacted[Identity]
	// The client id PK messages carry, nil until bound (WithClientID).
	core.ClientBinding
}

var _ core.Identity = (*Identity)(nil)

// NewIdentityFromSeed expands a 32-byte Ed25519 seed (RFC 8032), for
// example the output of DeriveKey.
func NewIdentityFromSeed(seed []byte) (*Identity, error) {
	if err := core.CheckKeyLen("seed", seed, SeedSize); err != nil {
		return nil, err
	}
	priv := ed25519.NewKeyFromSeed(seed)
	h := sha512.Sum512(seed)
	defer clear(h[:])
	x, err := ecdh.X25519().NewPrivateKey(h[:32])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", core.ErrInvalidKey, err)
	}
	return &Identity{priv: priv, xpriv: x}, nil
}

// ParsePrivateKey parses the 64-byte seed || pub private key SetIdKey
// carries. The public half must be the one the seed gives: a mismatched
// pair would sign messages no peer can verify.
func ParsePrivateKey(priv []byte) (*Identity, error) {
	if err := core.CheckKeyLen("private key", priv, PrivateKeySize); err != nil {
		return nil, err
	}
	id, err := NewIdentityFromSeed(priv[:SeedSize])
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(id.priv[SeedSize:], priv[SeedSize:]) != 1 {
		return nil, fmt.Errorf("%w: public half does not match the seed", core.ErrInvalidKey)
	}
	return id, nil
}

// Bytes returns a copy of the 64-byte seed || pub private key.
func (id *Identity) Bytes() []byte { return bytes.Clone(id.priv) }

// Seed returns a copy of the 32-byte Ed25519 seed.
func (id *Identity) Seed() []byte { return bytes.Clone(id.priv.Seed()) }

// PublicKey returns the 32-byte Ed25519 public key the client registers.
func (id *Identity) PublicKey() []byte { return bytes.Clone(id.priv[SeedSize:]) }

// SigningPublicKey is PublicKey: the standard suite signs and agrees keys
// from one Ed25519 key, as the reference does.
func (id *Identity) SigningPublicKey() []byte { return id.PublicKey() }

// X25519PublicKey returns the Montgomery form of the public key, the
// client's command-key agreement public key.
func (id *Identity) X25519PublicKey() []byte { return id.xpriv.PublicKey().Bytes() }

// WithClientID returns a copy of the identity bound to the 16-byte client
// id (SHA3-256(name)[:16]) it signs PK messages as. The id is not derived
// from the key; C2 announces (key, id) pairs with SetPubKey.
func (id *Identity) WithClientID(clientID []byte) (*Identity, error) {
	return core.WithClientID(id, clientID)
}

// asIdentity returns this package's form of id: an *Identity as is, any
// other implementation re-parsed from its Bytes.
func asIdentity(id core.Identity) (*Identity, error) {
	return core.AsOwn(id, "identity", func(v *Identity) bool { return v.xpriv != nil }, ParsePrivateKey)
}

// GenerateIdentity creates an identity from a random seed.
func (*Suite) GenerateIdentity() (core.Identity, error) {
	seed := make([]byte, SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("e4: generating identity: %w", err)
	}
	defer clear(seed)
	return NewIdentityFromSeed(seed)
}

// IdentityFromSeed expands a 32-byte seed (see NewIdentityFromSeed).
func (*Suite) IdentityFromSeed(seed []byte) (core.Identity, error) {
	return NewIdentityFromSeed(seed)
}

// ParseIdentity parses a 64-byte private key (see ParsePrivateKey).
func (*Suite) ParseIdentity(priv []byte) (core.Identity, error) { return ParsePrivateKey(priv) }

// CheckPublicKey checks that pub is a 32-byte encoding of an Ed25519 point
// outside the small-order subgroup (a small-order key would make the
// command key predictable: X25519 would give all zeros).
func (*Suite) CheckPublicKey(pub []byte) error {
	_, err := parseEdPublic(pub)
	return err
}

// SigningPublicKey returns a copy of pub, checked: the registered key is
// also the key SetPubKey carries.
func (*Suite) SigningPublicKey(pub []byte) ([]byte, error) {
	if _, err := parseEdPublic(pub); err != nil {
		return nil, err
	}
	return bytes.Clone(pub), nil
}

// parseEdPublic decodes an Ed25519 public key and refuses small-order points.
func parseEdPublic(pub []byte) (*edwards25519.Point, error) {
	if err := core.CheckKeyLen("Ed25519 public key", pub, PublicKeySize); err != nil {
		return nil, err
	}
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: not an Ed25519 point", core.ErrInvalidKey)
	}
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return nil, fmt.Errorf("%w: Ed25519 public key of small order", core.ErrInvalidKey)
	}
	return p, nil
}

// MontgomeryPublicKey maps an Ed25519 public key to its X25519 form,
// u = (1+y)/(1-y) mod p: the key C2 agrees command keys with.
func MontgomeryPublicKey(edPub []byte) ([]byte, error) {
	p, err := parseEdPublic(edPub)
	if err != nil {
		return nil, err
	}
	return p.BytesMontgomery(), nil
}

// C2Key is the X25519 key pair of a C2 in PK mode.
type C2Key struct {
	priv *ecdh.PrivateKey
	// Every fmt verb prints "standard.C2Key(redacted)", never the key.
	core.Redacted[C2Key]
}

var _ core.C2Key = (*C2Key)(nil)

// NewC2Key parses a 32-byte X25519 private key.
func NewC2Key(priv []byte) (*C2Key, error) {
	if err := core.CheckKeyLen("C2 private key", priv, C2PrivateKeySize); err != nil {
		return nil, err
	}
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", core.ErrInvalidKey, err)
	}
	return &C2Key{priv: k}, nil
}

// Bytes returns a copy of the 32-byte private key.
func (k *C2Key) Bytes() []byte { return k.priv.Bytes() }

// PublicKey returns the 32-byte X25519 public key SetC2Key carries.
func (k *C2Key) PublicKey() []byte { return k.priv.PublicKey().Bytes() }

// GenerateC2Key creates a random C2 key pair.
func (*Suite) GenerateC2Key() (core.C2Key, error) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("e4: generating C2 key: %w", err)
	}
	return &C2Key{priv: k}, nil
}

// ParseC2Key parses a 32-byte private key (see NewC2Key).
func (*Suite) ParseC2Key(priv []byte) (core.C2Key, error) { return NewC2Key(priv) }

func asC2Key(k core.C2Key) (*C2Key, error) {
	return core.AsOwn(k, "C2 key", func(v *C2Key) bool { return v.priv != nil }, NewC2Key)
}

// probeKey is a fixed random X25519 key used to test public keys for small
// order: X25519 with a clamped scalar (a multiple of 8) sends every
// small-order point to zero, which crypto/ecdh reports as an error.
var probeKey = sync.OnceValues(func() (*ecdh.PrivateKey, error) {
	return ecdh.X25519().GenerateKey(rand.Reader)
})

// CheckC2PublicKey checks that pub is a 32-byte X25519 public key of large
// order (the reference refuses only the all-zero key).
func (*Suite) CheckC2PublicKey(pub []byte) error {
	_, err := parseC2Public(pub)
	return err
}

func parseC2Public(pub []byte) (*ecdh.PublicKey, error) {
	if err := core.CheckKeyLen("C2 public key", pub, C2PublicKeySize); err != nil {
		return nil, err
	}
	p, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", core.ErrInvalidKey, err)
	}
	probe, err := probeKey()
	if err != nil {
		return nil, fmt.Errorf("e4: X25519 probe key: %w", err)
	}
	if _, err := probe.ECDH(p); err != nil {
		return nil, fmt.Errorf("%w: C2 public key of small order", core.ErrInvalidKey)
	}
	return p, nil
}
