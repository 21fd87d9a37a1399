// Package suites defines the crypto suite abstraction of E4: one Suite value
// fixes every primitive a device and the C2 use (identifier hashing, message
// AEAD, client signatures, the C2 -> client command key and password
// derivation).
//
// Three suites exist, each in its own sub-package, listed by All and found by
// ByName:
//
//   - standard: byte-compatible with the reference e4go client (AES-SIV,
//     Ed25519, X25519, Argon2i);
//   - fips: only FIPS 140-3 approved algorithms (AES-256-GCM, ECDSA and ECDH
//     P-256, PBKDF2), runs under GODEBUG=fips140=only;
//   - pq: post-quantum public-key mode (ML-DSA-65 signatures, ML-KEM-768
//     command encapsulation).
//
// The package also holds what every suite shares: the protocol errors, the
// timestamp window, the topic/name validation and the command codec.
// Registries are explicit lists, never init() self-registration.
package suites
