// Package standard is the reference-compatible E4 crypto suite: every byte it
// produces and every verdict it gives matches the reference e4go client
// (v1.1.0), checked against the vectors in suites/testdata/e4-standard.json.
// It implements core.PKSuite (modes SK and PK); New returns it.
//
// # Primitives
//
//   - client id and topic hash: SHA3-256(name or topic)[:16];
//   - message AEAD: AES-SIV (RFC 5297, AES-CMAC S2V then AES-CTR) with the
//     64-byte SIV key k||k (k the 32-byte topic key, so both halves are
//     AES-256 under k), exactly one associated-data component, the 8
//     timestamp bytes, and no nonce: deterministic (same key, timestamp and
//     plaintext give the same bytes). Implemented here on crypto/aes (see
//     SIV), with a constant-time tag check;
//   - client signature: Ed25519 (RFC 8032, crypto/ed25519);
//   - command key: X25519 between the C2 key pair and the client's Ed25519
//     key in Montgomery form, hashed with SHA3-256;
//   - password KDF: Argon2i v1.3, t=1, m=64 MiB, p=4, empty salt, 32 bytes.
//
// # Byte layouts
//
// SK message (SK mode, and every C2 command in both modes), overhead 24:
//
//	offset 0   LE64(ts)   8   Unix seconds, little-endian; the AES-SIV AD
//	offset 8   SIV       16   synthetic IV = S2V(k, ts, plaintext)
//	offset 24  CT         n   AES-256-CTR(k, Q, plaintext), Q = SIV with
//	                          bits 63 and 31 cleared, 128-bit BE counter
//
// PK message (client to client), overhead 104:
//
//	offset 0       LE64(ts)     8   as above; the only AES-SIV AD
//	offset 8       senderID    16   SHA3-256(sender name)[:16], not AD
//	offset 24      SIV         16   AES-SIV of the plaintext under the topic key
//	offset 40      CT           n
//	offset 40+n    signature   64   Ed25519 over bytes [0, 40+n)
//
// PK command: the SK layout under the command key
//
//	C2 side:     SHA3-256(X25519(c2_private, u(client_ed25519_public)))
//	client side: SHA3-256(X25519(clamp(SHA-512(seed)[:32]), c2_public))
//
// where u = (1+y)/(1-y) mod 2^255-19 maps the Edwards point to its
// Montgomery u-coordinate. An all-zero X25519 output (a small-order public
// key) is refused with core.ErrInvalidKey.
//
// # Keys
//
//	topic key, SK identity key, command key   32 bytes (KeySize)
//	identity private key (SetIdKey)           64 bytes: Ed25519 seed || public key
//	identity seed (IdentityFromSeed, DeriveKey) 32 bytes
//	client public key (new_client, SetPubKey) 32 bytes: Ed25519 public key
//	signature                                 64 bytes
//	C2 private key / public key (SetC2Key)    32 / 32 bytes: X25519
//
// Stricter than the reference (which would sign or agree with them): a
// 64-byte private key whose public half is not the seed's is refused, and
// CheckPublicKey / CheckC2PublicKey refuse points of small order.
//
// DeriveKey's 32 bytes are both the SK key and the Ed25519 seed of a
// password, as in the reference tools. Passwords must be valid UTF-8 and at
// least 16 bytes. This KDF is weak (one pass, no salt) and exists only for
// device compatibility.
//
// # Receiver checks
//
// SK (Unprotect): length <= 24 is ErrTooShortCiphertext (the reference
// cannot open an empty plaintext), then the timestamp window
// (core.CheckTimestamp), then AES-SIV (ErrNotAuthentic).
//
// PK (UnprotectSigned), the reference's order: length <= 72 is
// ErrInvalidProtectedLen; window; signer lookup by id (ErrPubKeyNotFound);
// Ed25519 verification (ErrInvalidSignature); then 73..87 bytes are
// ErrInvalidProtectedLen (the reference panics) and 88..103 bytes are
// ErrTooShortCiphertext (the reference's ad-hoc "too short ciphertext");
// then AES-SIV. 104 bytes, an empty plaintext, is accepted.
//
// # Performance
//
// Protect and Unprotect take raw key bytes on every call; the Suite keeps a
// small direct-mapped cache of expanded keys (64 slots, per Suite, with a
// random hash seed; a hit is confirmed by a constant-time comparison of
// the whole key; Forget drops a key), so a message costs one output
// allocation and no key schedule. Callers holding a key for long can keep
// a *SIV from NewSIV instead.
//
// The CMAC chain is inherently serial and runs one block call at a time;
// the counter mode is the standard library's cipher.NewCTR (one allocation
// for its state: plain library code was preferred to a faster hand-made
// counter mode). Target: SK Protect of 1 KiB within 1.4 times one
// AES-256-CBC pass plus one AES-256-CTR pass (BenchmarkRatioProtectSK),
// with two allocations (TestAllocs).
package standard
