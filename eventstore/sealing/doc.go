// Package sealing keeps key material out of the event log in clear: secret
// fields of events are sealed (AES-256-GCM) under data keys (DEKs), and the
// DEKs are wrapped by the master key (the KEK).
//
// The master key comes from a key file (32 raw bytes or hex, mode 0600 or
// stricter), an environment variable (hex or base64), or a passphrase
// stretched with Argon2id (t=3, m=64 MiB, p=4) or, under the FIPS suite,
// PBKDF2-HMAC-SHA256 (600,000 iterations), with a random 16-byte salt
// stored in the keyring.
//
// The keyring (wrapped DEKs, KDF parameters and a key-check value) lives in
// the backend's mutable keyring storage beside the log
// (eventstore.KeyringStorage), so rotating the master key rewrites only the
// keyring and never the log. The key-check value, an AEAD of a constant
// under the KEK, makes a wrong master key fail at open, before anything is
// served.
//
// Sealed value layout (version 1):
//
//	0x01 || DEK id (4 bytes BE) || nonce (12 bytes) || AES-256-GCM ciphertext and tag
//
// The GCM associated data is "e4c2/sealed/v1" || the 5-byte header || the
// caller's ad, which SealAD builds from the record's stream, version and
// event type: a sealed value copied into another record does not open.
//
// Nonces are random (96 bits); a DEK should be rotated (RotateDEK) well
// before 2^32 seals, which is far beyond any C2's key-rotation volume.
package sealing
