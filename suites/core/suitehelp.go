package core

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"reflect"
)

// The helpers of this file hold what every suite package would otherwise
// write again for its own key types: redaction, the client-id binding of
// identities, BindIdentity and the key length check. One copy means one
// place to review (redaction and binding are security properties) and no
// suite drifting from the others.

// Redacted, embedded in a type T that holds key material, makes every fmt
// verb (%v, %+v, %#v, %s, %x...) print "<package>.<T>(redacted)" instead of
// the fields, so that a stray log line or error cannot leak the key.
type Redacted[T any] struct{}

// String returns the placeholder; it never includes key material.
func (Redacted[T]) String() string { return reflect.TypeFor[T]().String() + "(redacted)" }

// GoString returns the placeholder for %#v.
func (r Redacted[T]) GoString() string { return r.String() }

// Format prints the placeholder for every fmt verb.
func (r Redacted[T]) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(r.String())) }

// ClientBinding, embedded in an identity type, holds the 16-byte client id
// the identity signs PK messages as (nil until bound with WithClientID) and
// gives the identity its ClientID method. E4 ids come from client names,
// not from keys, so the binding is explicit.
type ClientBinding struct {
	clientID []byte
}

// ClientID returns a copy of the bound client id, or nil if unbound.
func (b *ClientBinding) ClientID() []byte {
	if b.clientID == nil {
		return nil
	}
	return bytes.Clone(b.clientID)
}

func (b *ClientBinding) binding() *ClientBinding { return b }

// bindable is an identity type *T that embeds ClientBinding.
type bindable[T any] interface {
	*T
	ClientIdentity
	binding() *ClientBinding
}

// WithClientID returns a copy of *id bound to clientID (which must be
// IDLen bytes: ErrInvalidName otherwise). The copy shares the key
// expansions of id, which are immutable; id itself is unchanged.
func WithClientID[T any, PT bindable[T]](id PT, clientID []byte) (PT, error) {
	if err := ValidateID(clientID); err != nil {
		return nil, err
	}
	c := *id
	PT(&c).binding().clientID = bytes.Clone(clientID)
	return &c, nil
}

// BindIdentity is the IdentityBinder of every suite whose identity type is
// *T: it returns a copy of id bound to clientID. id is the suite's own type
// or any Identity whose Bytes parse parses into it (a wrapper). A nil
// identity, or a key that parses into another type, returns ErrInvalidKey;
// errors of parse are wrapped with "<suite>: bind identity".
func BindIdentity[T any, PT bindable[T]](suite string, id Identity, clientID []byte, parse func(priv []byte) (Identity, error)) (ClientIdentity, error) {
	own, ok := id.(PT)
	if id == nil || ok && own == nil {
		return nil, fmt.Errorf("%s: bind identity: %w: nil identity", suite, ErrInvalidKey)
	}
	if !ok {
		priv := id.Bytes()
		defer clear(priv)
		parsed, err := parse(priv)
		if err != nil {
			return nil, fmt.Errorf("%s: bind identity: %w", suite, err)
		}
		if own, ok = parsed.(PT); !ok {
			return nil, fmt.Errorf("%s: bind identity: %w: parsed into another suite's identity", suite, ErrInvalidKey)
		}
	}
	return WithClientID(own, clientID)
}

// CheckKeyLen returns an error wrapping ErrInvalidKey, naming what and
// both lengths, unless len(b) == n. Keys of the wrong length are the most
// common misuse of the suites; one message format keeps them greppable.
func CheckKeyLen(what string, b []byte, n int) error {
	if len(b) != n {
		return fmt.Errorf("%w: %s must be %d bytes, got %d", ErrInvalidKey, what, n, len(b))
	}
	return nil
}

// GenerateKey returns KeyLen bytes from crypto/rand, the key size of every
// suite (under GODEBUG=fips140=only crypto/rand is the approved DRBG).
// suite prefixes the error.
func GenerateKey(suite string) ([]byte, error) {
	k := make([]byte, KeyLen)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("%s: generate key: %w", suite, err)
	}
	return k, nil
}

// AsOwn returns k as a suite's own key type PT (an *Identity or *C2Key of
// the suite): k itself when it is a usable PT, any other implementation (a
// wrapper around a key of the suite) re-parsed from its Bytes by parse. A
// nil k, a nil PT or one usable rejects (a zero value, whose key fields
// are unset) returns ErrInvalidKey; what names the key in that error.
func AsOwn[PT comparable](k interface{ Bytes() []byte }, what string, usable func(PT) bool, parse func([]byte) (PT, error)) (PT, error) {
	var zero PT
	if k == nil {
		return zero, fmt.Errorf("%w: nil %s", ErrInvalidKey, what)
	}
	own, ok := k.(PT)
	if !ok {
		return parse(k.Bytes())
	}
	if own == zero || !usable(own) {
		return zero, fmt.Errorf("%w: nil or empty %s", ErrInvalidKey, what)
	}
	return own, nil
}
