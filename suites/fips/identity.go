package fips

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"

	"github.com/e4c2/e4c2/suites/core"
)

// Labels of the identity expansion (see the package documentation). They are
// part of the wire contract: changing one changes every derived key.
const (
	identitySalt = "e4c2/fips/identity-v1"
	signingInfo  = "e4c2/fips/identity-v1/ecdsa-p256-signing"
	agreeInfo    = "e4c2/fips/identity-v1/ecdh-p256-agreement"
)

// p256Order is n, the order of the P-256 base point, big-endian.
var p256Order = [32]byte{
	0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
	0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
}

// validScalar reports, in constant time, whether the big-endian 32-byte c is
// in [1, n-1], the range of a P-256 private key.
func validScalar(c []byte) bool {
	// c < n iff c - n borrows out of the most significant byte.
	var borrow uint32
	for i := len(c) - 1; i >= 0; i-- {
		d := uint32(c[i]) - uint32(p256Order[i]) - borrow
		borrow = (d >> 8) & 1
	}
	var zero [32]byte
	nonZero := 1 - subtle.ConstantTimeCompare(c, zero[:])
	return borrow&uint32(nonZero) == 1
}

// deriveScalar expands prk into a P-256 private scalar for one purpose by
// rejection sampling (FIPS 186-5 A.2.2 style): candidate i is
// HKDF-Expand(SHA-256, prk, info || byte(i), 32), accepted iff 1 <= c <= n-1.
// A candidate is rejected with probability about 2^-32, so the loop almost
// never runs twice; 256 rejections in a row cannot happen in practice.
func deriveScalar(prk []byte, info string) ([]byte, error) {
	return sampleScalar(func(i byte) ([]byte, error) {
		c, err := hkdf.Expand(sha256.New, prk, info+string([]byte{i}), 32)
		if err != nil {
			return nil, fmt.Errorf("fips: hkdf expand: %w", err)
		}
		return c, nil
	})
}

// sampleScalar returns the first candidate(i), i = 0..255, that is a valid
// scalar. It is separate from deriveScalar so that the rejection path, which
// real HKDF output practically never takes, can be tested.
func sampleScalar(candidate func(i byte) ([]byte, error)) ([]byte, error) {
	for i := 0; i < 256; i++ {
		c, err := candidate(byte(i))
		if err != nil {
			return nil, err
		}
		if len(c) == 32 && validScalar(c) {
			return c, nil
		}
	}
	return nil, fmt.Errorf("%w: no valid scalar from seed", core.ErrInvalidKey)
}

// Identity is a client identity of the FIPS suite: the 32-byte seed and the
// two P-256 keys expanded from it, one for ECDSA signatures and one for ECDH
// command-key agreement (NIST SP 800-57: one key, one purpose).
type Identity struct {
	seed    []byte
	sign    *ecdsa.PrivateKey
	agree   *ecdh.PrivateKey
	public  []byte // ECDSA point || ECDH point
	sigPub  []byte // ECDSA point
	agreePb []byte // ECDH point
	// Every fmt verb prints "fips.Identity(redacted)", never the key.
	core.Redacted[Identity]
	// The client id PK messages carry, nil until bound (WithClientID).
	core.ClientBinding
}

var _ core.Identity = (*Identity)(nil)

// IdentityFromSeed expands a 32-byte seed into an Identity. It is
// deterministic: the C2 and a device holding the same seed agree.
func IdentityFromSeed(seed []byte) (*Identity, error) {
	prk, err := identityPRK(seed)
	if err != nil {
		return nil, err
	}
	sign, err := signingKey(prk)
	if err != nil {
		return nil, err
	}
	a, err := deriveScalar(prk, agreeInfo)
	if err != nil {
		return nil, err
	}
	agree, err := ecdh.P256().NewPrivateKey(a)
	clear(a)
	if err != nil {
		return nil, fmt.Errorf("%w: agreement key: %w", core.ErrInvalidKey, err)
	}
	sigPub, err := sign.PublicKey.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: signing public key: %w", core.ErrInvalidKey, err)
	}
	agreePub := agree.PublicKey().Bytes()
	return &Identity{
		seed:    append([]byte(nil), seed...),
		sign:    sign,
		agree:   agree,
		public:  append(append(make([]byte, 0, PublicKeySize), sigPub...), agreePub...),
		sigPub:  sigPub,
		agreePb: agreePub,
	}, nil
}

// identityPRK checks the seed length and runs the HKDF extract step.
func identityPRK(seed []byte) ([]byte, error) {
	if err := core.CheckKeyLen("identity seed", seed, SeedSize); err != nil {
		return nil, err
	}
	prk, err := hkdf.Extract(sha256.New, seed, []byte(identitySalt))
	if err != nil {
		return nil, fmt.Errorf("fips: hkdf extract: %w", err)
	}
	return prk, nil
}

// signingKey derives the ECDSA key of an identity from its prk.
func signingKey(prk []byte) (*ecdsa.PrivateKey, error) {
	d, err := deriveScalar(prk, signingInfo)
	if err != nil {
		return nil, err
	}
	sign, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	clear(d)
	if err != nil {
		return nil, fmt.Errorf("%w: signing key: %w", core.ErrInvalidKey, err)
	}
	return sign, nil
}

// signingKeyOf returns the ECDSA key of any core.Identity: directly for an
// Identity of this package, else by expanding its seed (signing key only,
// which is what a wrapper such as suitetest.BoundIdentity costs per call;
// binding with Identity.WithClientID avoids it).
func signingKeyOf(id core.Identity) (*ecdsa.PrivateKey, error) {
	if v, ok := id.(*Identity); ok && v != nil && v.sign != nil {
		return v.sign, nil
	}
	if id == nil {
		return nil, fmt.Errorf("%w: nil identity", core.ErrInvalidKey)
	}
	prk, err := identityPRK(id.Bytes())
	if err != nil {
		return nil, err
	}
	return signingKey(prk)
}

// Bytes returns a copy of the 32-byte seed, the form SetIdKey carries.
func (id *Identity) Bytes() []byte { return append([]byte(nil), id.seed...) }

// PublicKey returns a copy of the 130-byte public key registered with C2:
// the uncompressed ECDSA point followed by the uncompressed ECDH point.
func (id *Identity) PublicKey() []byte { return append([]byte(nil), id.public...) }

// SigningPublicKey returns a copy of the 65-byte ECDSA point (SetPubKey).
func (id *Identity) SigningPublicKey() []byte { return append([]byte(nil), id.sigPub...) }

// AgreementPublicKey returns a copy of the 65-byte ECDH point.
func (id *Identity) AgreementPublicKey() []byte { return append([]byte(nil), id.agreePb...) }

// asIdentity accepts an Identity of this suite, or re-parses the seed of any
// other core.Identity implementation.
func asIdentity(id core.Identity) (*Identity, error) {
	return core.AsOwn(id, "identity", func(v *Identity) bool { return v.sign != nil }, IdentityFromSeed)
}

// GenerateIdentity creates an identity from a fresh random seed.
func (s *Suite) GenerateIdentity() (core.Identity, error) {
	seed, err := s.GenerateKey()
	if err != nil {
		return nil, err
	}
	return IdentityFromSeed(seed)
}

// IdentityFromSeed expands a 32-byte seed (e.g. from DeriveKey).
func (*Suite) IdentityFromSeed(seed []byte) (core.Identity, error) {
	id, err := IdentityFromSeed(seed)
	if err != nil {
		return nil, err
	}
	return id, nil
}

// ParseIdentity parses what SetIdKey carries: the 32-byte seed.
func (s *Suite) ParseIdentity(priv []byte) (core.Identity, error) {
	return s.IdentityFromSeed(priv)
}

// parsePublic splits and validates a 130-byte registered public key.
func parsePublic(pub []byte) (*ecdsa.PublicKey, *ecdh.PublicKey, error) {
	if err := core.CheckKeyLen("public key", pub, PublicKeySize); err != nil {
		return nil, nil, err
	}
	sp, err := parseSigningPublic(pub[:PointSize])
	if err != nil {
		return nil, nil, err
	}
	ap, err := ecdh.P256().NewPublicKey(pub[PointSize:])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: agreement point: %w", core.ErrInvalidKey, err)
	}
	return sp, ap, nil
}

// parseSigningPublic validates a 65-byte uncompressed ECDSA P-256 point
// (on the curve, not the identity), as SP 800-89 requires before use.
func parseSigningPublic(b []byte) (*ecdsa.PublicKey, error) {
	if err := core.CheckKeyLen("signing public key", b, PointSize); err != nil {
		return nil, err
	}
	pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b)
	if err != nil {
		return nil, fmt.Errorf("%w: signing point: %w", core.ErrInvalidKey, err)
	}
	return pk, nil
}

// CheckPublicKey validates a 130-byte public key a client registers: both
// points must be valid uncompressed P-256 points.
func (*Suite) CheckPublicKey(pub []byte) error {
	_, _, err := parsePublic(pub)
	return err
}

// SigningPublicKey validates a registered public key and returns a copy of
// its first 65 bytes, the ECDSA point that SetPubKey carries.
func (*Suite) SigningPublicKey(pub []byte) ([]byte, error) {
	if _, _, err := parsePublic(pub); err != nil {
		return nil, err
	}
	return append([]byte(nil), pub[:PointSize]...), nil
}

// C2Key is the C2 ECDH P-256 key pair of PK mode.
type C2Key struct {
	priv *ecdh.PrivateKey
	// Every fmt verb prints "fips.C2Key(redacted)", never the key.
	core.Redacted[C2Key]
}

var _ core.C2Key = (*C2Key)(nil)

// Bytes returns a copy of the 32-byte big-endian private scalar.
func (k *C2Key) Bytes() []byte { return k.priv.Bytes() }

// PublicKey returns the 65-byte uncompressed point carried by SetC2Key.
func (k *C2Key) PublicKey() []byte { return k.priv.PublicKey().Bytes() }

// GenerateC2Key creates a C2 key pair with crypto/rand.
func (*Suite) GenerateC2Key() (core.C2Key, error) {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("fips: generate c2 key: %w", err)
	}
	return &C2Key{priv: priv}, nil
}

// ParseC2Key parses a 32-byte private scalar in [1, n-1].
func (*Suite) ParseC2Key(priv []byte) (core.C2Key, error) {
	k, err := parseC2Key(priv)
	if err != nil {
		return nil, err
	}
	return k, nil
}

func parseC2Key(priv []byte) (*C2Key, error) {
	if err := core.CheckKeyLen("c2 private key", priv, C2PrivateSize); err != nil {
		return nil, err
	}
	p, err := ecdh.P256().NewPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: c2 private key: %w", core.ErrInvalidKey, err)
	}
	return &C2Key{priv: p}, nil
}

func asC2Key(k core.C2Key) (*C2Key, error) {
	return core.AsOwn(k, "c2 key", func(v *C2Key) bool { return v.priv != nil }, parseC2Key)
}

// CheckC2PublicKey validates a 65-byte uncompressed ECDH P-256 point.
func (*Suite) CheckC2PublicKey(pub []byte) error {
	_, err := parseC2Public(pub)
	return err
}

func parseC2Public(pub []byte) (*ecdh.PublicKey, error) {
	if err := core.CheckKeyLen("c2 public key", pub, C2PublicSize); err != nil {
		return nil, err
	}
	p, err := ecdh.P256().NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: c2 public key: %w", core.ErrInvalidKey, err)
	}
	return p, nil
}

// WithClientID returns a copy of the identity bound to the 16-byte client id
// it signs PK messages as. The id is not derived from the key: E4 ids come
// from client names, and C2 announces (id, signing key) pairs with SetPubKey.
func (id *Identity) WithClientID(clientID []byte) (*Identity, error) {
	return core.WithClientID(id, clientID)
}
