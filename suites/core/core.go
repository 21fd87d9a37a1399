package core

import (
	"time"
)

// Mode is the key-management mode a C2 and its devices run in.
type Mode uint8

const (
	// SymKey (SK): every client shares a symmetric identity key with C2.
	SymKey Mode = 1
	// PubKey (PK): clients sign messages, C2 derives command keys from
	// public keys.
	PubKey Mode = 2
)

// String returns "sk" or "pk".
func (m Mode) String() string {
	switch m {
	case SymKey:
		return "sk"
	case PubKey:
		return "pk"
	}
	return "invalid"
}

// ParseMode parses "sk" or "pk".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "sk", "SK", "symkey":
		return SymKey, nil
	case "pk", "PK", "pubkey":
		return PubKey, nil
	}
	return 0, &ModeError{Mode: s}
}

// Window is the timestamp acceptance window of a receiver: a message with
// timestamp ts is valid at time now iff now-MaxAge <= ts <= now+MaxSkew.
type Window struct {
	MaxAge  time.Duration
	MaxSkew time.Duration
}

// DefaultWindow is the reference behaviour: 10 minutes back, nothing ahead.
func DefaultWindow() Window { return Window{MaxAge: 10 * time.Minute} }

// Sizes lists the byte sizes a suite fixes. Zero means "not used".
type Sizes struct {
	Key             int // symmetric topic / SK identity key
	SKOverhead      int // protected SK message length minus plaintext length
	PKOverhead      int // protected PK message length minus plaintext length
	IdentityKey     int // PK: private identity key as carried by SetIdKey
	PublicKey       int // PK: public key a client registers with C2 (new_client)
	SigningPublic   int // PK: public key carried by SetPubKey (verifies messages)
	Signature       int // PK: client signature length
	C2PublicKey     int // PK: C2 public key carried by SetC2Key
	CommandOverhead int // PK: protected command length minus command length
}

// Suite is the set of primitives shared by SK and PK mode. Every Suite
// supports ID and HashTopic and the symmetric message layer; SK mode also
// uses it for commands. Implementations are safe for concurrent use.
type Suite interface {
	// Name is stable and persisted in events: "standard", "fips", "pq".
	Name() string
	// Modes reports which modes the suite supports.
	Modes() []Mode
	// Sizes returns the byte sizes of keys, overheads and signatures.
	Sizes() Sizes

	// ID returns the 16-byte identifier of a client name.
	ID(name string) []byte
	// HashTopic returns the 16-byte hash of a topic.
	HashTopic(topic string) []byte

	// GenerateKey returns a fresh random symmetric key (topic or SK identity).
	GenerateKey() ([]byte, error)
	// DeriveKey derives the 32-byte symmetric key / identity seed of a
	// password with the suite's password KDF.
	DeriveKey(password string) ([]byte, error)

	// Protect seals msg under key with timestamp ts in the suite's SK layout.
	Protect(key, msg []byte, ts time.Time) ([]byte, error)
	// Unprotect checks length, timestamp window (at now) and authenticity,
	// in that order, and returns the plaintext. Errors are the sentinels of
	// this package (wrapped), usable with errors.Is.
	Unprotect(key, protected []byte, now time.Time, w Window) ([]byte, error)
}

// Identity is a client's private identity in PK mode, parsed once so that
// expensive expansions (seed -> signing and agreement keys) are cached.
type Identity interface {
	// Bytes returns a copy of the private key as SetIdKey carries it.
	Bytes() []byte
	// PublicKey returns the public key the client registers with C2.
	PublicKey() []byte
	// SigningPublicKey returns the part of PublicKey peers verify with.
	SigningPublicKey() []byte
}

// C2Key is the C2 key pair of PK mode.
type C2Key interface {
	// Bytes returns a copy of the private key (sealed before storage).
	Bytes() []byte
	// PublicKey returns the public key carried by SetC2Key.
	PublicKey() []byte
}

// PKSuite is implemented by suites that support PK mode.
type PKSuite interface {
	Suite
	// IdentityBinder binds an identity to the client id it signs as.
	IdentityBinder

	// GenerateIdentity creates a random client identity.
	GenerateIdentity() (Identity, error)
	// IdentityFromSeed expands a 32-byte seed (e.g. from DeriveKey).
	IdentityFromSeed(seed []byte) (Identity, error)
	// ParseIdentity parses the private key bytes SetIdKey carries.
	ParseIdentity(priv []byte) (Identity, error)
	// CheckPublicKey validates a public key a client registers with C2.
	CheckPublicKey(pub []byte) error
	// SigningPublicKey extracts the SetPubKey part of a registered public key.
	SigningPublicKey(pub []byte) ([]byte, error)

	// ProtectSigned protects msg for topic key in the PK layout, signed by id.
	ProtectSigned(id Identity, topicKey, msg []byte, ts time.Time) ([]byte, error)
	// UnprotectSigned checks a PK message. signer returns the signing
	// public key of a sender id, or an error wrapping ErrPubKeyNotFound.
	// It returns the plaintext and the sender id.
	UnprotectSigned(topicKey, protected []byte, now time.Time, w Window,
		signer func(id []byte) ([]byte, error)) (plain, sender []byte, err error)
	// SenderID returns the sender id of a PK message without checking it.
	SenderID(protected []byte) ([]byte, error)

	// GenerateC2Key creates a C2 key pair; ParseC2Key reads one back.
	GenerateC2Key() (C2Key, error)
	ParseC2Key(priv []byte) (C2Key, error)
	// CheckC2PublicKey validates a C2 public key carried by SetC2Key.
	CheckC2PublicKey(pub []byte) error

	// ProtectCommand protects a command from C2 to the client that
	// registered clientPub.
	ProtectCommand(c2 C2Key, clientPub, cmd []byte, ts time.Time) ([]byte, error)
	// UnprotectCommand is the client side of ProtectCommand.
	UnprotectCommand(id Identity, c2Pub, protected []byte, now time.Time, w Window) ([]byte, error)
}
