// Package client is the E4 device library: the state a device keeps (its
// id, identity key, topic keys and, in PK mode, its peers' signing keys and
// the C2 public key), the protection of outgoing application messages, and
// the handling of everything the device receives: application messages are
// checked and decrypted with the topic key, messages on the device's control
// topic "e4/<hex id>" are C2 commands that change the state.
//
// A Client is built with New from a Config (suite, mode, name or id,
// identity key or password, C2 public key in PK mode), re-opened from its
// state file with Load (which reads the suite from the file), or imported from a reference e4go state file with
// ImportE4GoState. Every byte format comes from the suite (suites/core,
// suites/standard, ...); this package only manages state and policy.
//
// Behaviour that differs from the reference library on purpose (see
// docs/PROTOCOL.md section 6) is limited to errors: inputs that panic the
// reference return ErrInvalidProtectedLen, the ad-hoc "too short
// ciphertext" is ErrTooShortCiphertext, and after a topic's previous key has
// expired a forged message is reported as ErrNotAuthentic, not
// ErrTimestampTooOld. The library also validates what the reference does
// not: topics, 16-byte ids, exact command lengths.
//
// Key transition: when SetTopicKey replaces a topic key, the previous key is
// kept with the time of the replacement and still accepted for Transition
// (default 60 minutes) so that receivers that learned the new key early
// still read senders that have not.
//
// Concurrency: a Client is safe for concurrent use. The state is an
// immutable snapshot swapped atomically by the (serialized) command path,
// so message protection, decryption and signature verification never wait
// on a lock.
//
// Persistence: with a state path, every command that changes the state
// rewrites the whole state file atomically (temporary file in the same
// directory, fsync, rename, fsync of the directory) with mode 0600, before
// the new state is used. Removed keys are therefore gone from the file.
// In-memory copies of removed keys are left to the garbage collector: Go
// cannot promise to erase them.
package client
