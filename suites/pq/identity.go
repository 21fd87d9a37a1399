package pq

import (
	"crypto/rand"
	"crypto/sha3"
	"crypto/subtle"
	"fmt"

	"github.com/cloudflare/circl/kem/mlkem/mlkem768"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"github.com/e4c2/e4c2/suites/core"
)

// Labels of the identity seed expansion. Each key is
// SHAKE-256(label || seed) truncated to the seed size of its scheme, so the
// two keys are independent and neither reveals the other or the seed.
const (
	LabelIdentityMLDSA = "e4c2/pq/identity/ml-dsa-65/v1"
	LabelIdentityMLKEM = "e4c2/pq/identity/ml-kem-768/v1"
)

// Identity is a pq client identity: a 32-byte seed and the ML-DSA-65
// signing key and ML-KEM-768 decapsulation key expanded from it. It is
// immutable and safe for concurrent use.
type Identity struct {
	seed    [KeySize]byte
	sigPub  *mldsa65.PublicKey
	sigPriv *mldsa65.PrivateKey
	kemPriv *mlkem768.PrivateKey
	pub     []byte // ML-DSA public key || ML-KEM encapsulation key
	// Every fmt verb prints "pq.Identity(redacted)", never the key.
	core.Redacted[Identity]
	// The client id PK messages carry, nil until bound (WithClientID).
	core.ClientBinding
}

var _ core.Identity = (*Identity)(nil)

// NewIdentityFromSeed expands a 32-byte seed into an identity.
func NewIdentityFromSeed(seed []byte) (*Identity, error) {
	if err := core.CheckKeyLen("identity seed", seed, KeySize); err != nil {
		return nil, err
	}
	id := &Identity{}
	copy(id.seed[:], seed)

	var dsaSeed [mldsa65.SeedSize]byte
	expand(dsaSeed[:], LabelIdentityMLDSA, seed)
	id.sigPub, id.sigPriv = mldsa65.NewKeyFromSeed(&dsaSeed)
	clear(dsaSeed[:])

	var kemSeed [mlkem768.KeySeedSize]byte
	expand(kemSeed[:], LabelIdentityMLKEM, seed)
	kemPub, kemPriv := mlkem768.NewKeyFromSeed(kemSeed[:])
	clear(kemSeed[:])
	id.kemPriv = kemPriv

	id.pub = make([]byte, PublicKeySize)
	id.sigPub.Pack((*[SigningPublicKeySize]byte)(id.pub[:SigningPublicKeySize]))
	kemPub.Pack(id.pub[SigningPublicKeySize:])
	return id, nil
}

// expand fills out with SHAKE-256(label || seed).
func expand(out []byte, label string, seed []byte) {
	h := sha3.NewSHAKE256()
	_, _ = h.Write([]byte(label))
	_, _ = h.Write(seed)
	_, _ = h.Read(out)
}

// Bytes returns a copy of the 32-byte seed, as SetIdKey carries it.
func (id *Identity) Bytes() []byte { return append([]byte(nil), id.seed[:]...) }

// PublicKey returns a copy of the 3136-byte public key registered with C2:
// ML-DSA-65 public key (1952) || ML-KEM-768 encapsulation key (1184).
func (id *Identity) PublicKey() []byte { return append([]byte(nil), id.pub...) }

// SigningPublicKey returns a copy of the 1952-byte ML-DSA-65 public key,
// the part peers receive with SetPubKey.
func (id *Identity) SigningPublicKey() []byte {
	return append([]byte(nil), id.pub[:SigningPublicKeySize]...)
}

// Equal reports in constant time whether two identities hold the same seed.
func (id *Identity) Equal(other *Identity) bool {
	return other != nil && subtle.ConstantTimeCompare(id.seed[:], other.seed[:]) == 1
}

// GenerateIdentity creates an identity from a fresh random seed.
func (*Suite) GenerateIdentity() (core.Identity, error) {
	var seed [KeySize]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("pq: generate identity: %w", err)
	}
	return NewIdentityFromSeed(seed[:])
}

// IdentityFromSeed expands a 32-byte seed (e.g. from DeriveKey).
func (*Suite) IdentityFromSeed(seed []byte) (core.Identity, error) {
	return NewIdentityFromSeed(seed)
}

// ParseIdentity parses the private key SetIdKey carries: the 32-byte seed.
func (*Suite) ParseIdentity(priv []byte) (core.Identity, error) {
	return NewIdentityFromSeed(priv)
}

// CheckPublicKey validates a registered client public key: 3136 bytes; an
// ML-DSA-65 part as checkSigningKey wants it; an ML-KEM-768 part that passes
// the FIPS 203 encapsulation key check (every coefficient reduced mod q)
// and whose t-hat is not all zero.
func (*Suite) CheckPublicKey(pub []byte) error {
	_, err := parseClientKEM(pub)
	return err
}

// SigningPublicKey returns a copy of the ML-DSA-65 part of a registered
// public key, after validating the whole key.
func (s *Suite) SigningPublicKey(pub []byte) ([]byte, error) {
	if err := s.CheckPublicKey(pub); err != nil {
		return nil, err
	}
	return append([]byte(nil), pub[:SigningPublicKeySize]...), nil
}

// parseClientKEM validates a registered public key and returns its
// ML-KEM-768 encapsulation key.
func parseClientKEM(pub []byte) (*mlkem768.PublicKey, error) {
	if err := core.CheckKeyLen("pq public key", pub, PublicKeySize); err != nil {
		return nil, err
	}
	if err := checkSigningKey(pub[:SigningPublicKeySize], "ML-DSA-65 part of the public key"); err != nil {
		return nil, err
	}
	ek := pub[SigningPublicKeySize:]
	// An all-zero t-hat passes the FIPS 203 modulus check, but then the
	// ciphertext's v carries the message with noise only, readable by
	// anyone: the command key would be public.
	if allZero(ek[:mlkemTSize]) {
		return nil, fmt.Errorf("%w: ML-KEM-768 encapsulation key is degenerate (t = 0)", core.ErrInvalidKey)
	}
	var k mlkem768.PublicKey
	if err := k.Unpack(ek); err != nil {
		return nil, fmt.Errorf("%w: ML-KEM-768 encapsulation key: %w", core.ErrInvalidKey, err)
	}
	return &k, nil
}

// checkSigningKey validates a 1952-byte ML-DSA-65 public key (a peer's
// SetPubKey key or C2's SetC2Key key). Every string of that length decodes,
// so beyond the length it refuses only the degenerate key whose t1 (the
// 1920 bytes after rho) is all zero: verification then no longer depends on
// any secret, and anyone can sign for it. That is what an unset buffer
// looks like, so the check turns a wiring error into ErrInvalidKey instead
// of a forgeable C2 or peer key. (A key its owner crafted to be weak cannot
// be detected, and harms only what that owner signs.)
func checkSigningKey(pub []byte, what string) error {
	if err := core.CheckKeyLen(what, pub, SigningPublicKeySize); err != nil {
		return err
	}
	if allZero(pub[mldsaRhoSize:]) {
		return fmt.Errorf("%w: %s is degenerate (t1 = 0)", core.ErrInvalidKey, what)
	}
	return nil
}

// mldsaRhoSize and mlkemTSize locate the parts of the public keys that
// the degenerate-key checks look at (FIPS 204 pk = rho || t1, FIPS 203
// ek = t-hat || rho).
const (
	mldsaRhoSize = 32
	mlkemTSize   = KEMPublicKeySize - 32
)

func allZero(b []byte) bool {
	var acc byte
	for _, x := range b {
		acc |= x
	}
	return acc == 0
}

// signingKey validates and decodes an ML-DSA-65 public key, through the
// suite's cache.
func (s *Suite) signingKey(pub []byte, what string) (*mldsa65.PublicKey, error) {
	if err := checkSigningKey(pub, what); err != nil {
		return nil, err
	}
	return s.keys.get(pub), nil
}

// C2Key is the C2 key pair of the pq suite: an ML-DSA-65 key expanded from
// a 32-byte seed (FIPS 204 ML-DSA.KeyGen_internal(ξ = seed)). C2 needs no
// KEM key of its own: commands are encapsulated to the client's key and
// authenticated by C2's signature.
type C2Key struct {
	seed [KeySize]byte
	priv *mldsa65.PrivateKey
	pub  []byte
	// Every fmt verb prints "pq.C2Key(redacted)", never the key.
	core.Redacted[C2Key]
}

var _ core.C2Key = (*C2Key)(nil)

// NewC2KeyFromSeed expands a 32-byte seed into a C2 key pair.
func NewC2KeyFromSeed(seed []byte) (*C2Key, error) {
	if err := core.CheckKeyLen("c2 seed", seed, KeySize); err != nil {
		return nil, err
	}
	k := &C2Key{}
	copy(k.seed[:], seed)
	var pub *mldsa65.PublicKey
	pub, k.priv = mldsa65.NewKeyFromSeed(&k.seed)
	k.pub = pub.Bytes()
	return k, nil
}

// Bytes returns a copy of the 32-byte C2 seed.
func (k *C2Key) Bytes() []byte { return append([]byte(nil), k.seed[:]...) }

// PublicKey returns a copy of the 1952-byte ML-DSA-65 public key that
// SetC2Key carries.
func (k *C2Key) PublicKey() []byte { return append([]byte(nil), k.pub...) }

// GenerateC2Key creates a C2 key pair from a fresh random seed.
func (*Suite) GenerateC2Key() (core.C2Key, error) {
	var seed [KeySize]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("pq: generate c2 key: %w", err)
	}
	return NewC2KeyFromSeed(seed[:])
}

// ParseC2Key reads back the 32-byte seed of Bytes.
func (*Suite) ParseC2Key(priv []byte) (core.C2Key, error) { return NewC2KeyFromSeed(priv) }

// CheckC2PublicKey validates a C2 public key carried by SetC2Key: an
// ML-DSA-65 public key of 1952 bytes whose t1 is not all zero.
func (*Suite) CheckC2PublicKey(pub []byte) error {
	return checkSigningKey(pub, "c2 public key")
}

// WithClientID returns a copy of the identity bound to the 16-byte client
// id it signs PK messages as (SHA3-256(name)[:16]). The id is not derived
// from the key: C2 announces (id, signing key) pairs with SetPubKey.
func (id *Identity) WithClientID(clientID []byte) (*Identity, error) {
	return core.WithClientID(id, clientID)
}

// asIdentity returns the pq form of id: this suite's Identity as is, any
// other implementation (a wrapper) re-expanded from its 32-byte seed. A key
// of another suite has another length and is refused with ErrInvalidKey.
func asIdentity(id core.Identity) (*Identity, error) {
	return core.AsOwn(id, "identity", func(v *Identity) bool { return v.sigPriv != nil }, NewIdentityFromSeed)
}

// asC2Key returns the pq form of k, like asIdentity.
func asC2Key(k core.C2Key) (*C2Key, error) {
	return core.AsOwn(k, "c2 key", func(v *C2Key) bool { return v.priv != nil }, NewC2KeyFromSeed)
}
