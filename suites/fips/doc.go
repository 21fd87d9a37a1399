// Package fips is the E4 suite built only from FIPS 140-3 approved
// algorithms, as implemented by the Go Cryptographic Module in the standard
// library. It supports SK and PK mode and runs unchanged with
// GODEBUG=fips140=only (a test re-runs the package's tests in that mode, and
// another fails if the import graph reaches a non-approved implementation:
// Argon2, CIRCL, AES-SIV, X25519 or Ed25519).
//
// This comment is the specification of the suite; testdata/vectors.json
// holds known-answer vectors for it. All integers are unsigned; LE64 is
// little-endian, BE32 big-endian. "||" is concatenation.
//
// # Primitives
//
//	ids, topic hashes   SHA3-256(UTF-8 bytes)[:16]            (core.HashID)
//	message AEAD        AES-256-GCM, 96-bit random nonce, 128-bit tag
//	signature           ECDSA P-256 with SHA-256 (FIPS 186-5), r || s
//	key agreement       ECDH P-256 (SP 800-56A rev. 3), one-step KDF
//	                    with SHA3-256 (SP 800-56C rev. 2)
//	identity expansion  HKDF-SHA256 (SP 800-56C rev. 2 two-step KDF)
//	password KDF        PBKDF2-HMAC-SHA256 (SP 800-132)
//	randomness          crypto/rand (the module's DRBG)
//
// # Sizes
//
//	topic key, SK identity key    32   (AES-256)
//	identity seed (SetIdKey, PK)  32
//	client public key (PK)        130  = ECDSA point (65) || ECDH point (65)
//	signing public key (SetPubKey) 65  = uncompressed ECDSA P-256 point
//	C2 private key                32   = big-endian ECDH P-256 scalar
//	C2 public key (SetC2Key)      65   = uncompressed ECDH P-256 point
//	signature                     64   = r (32, big-endian) || s (32)
//	SK overhead                   36   = 8 + 12 + 16
//	PK overhead                   116  = 8 + 16 + 12 + 16 + 64
//	command overhead              36   (commands use the SK layout)
//
// Points are SEC 1 uncompressed: 0x04 || X (32) || Y (32). Every point
// received (registered client keys, SetPubKey, SetC2Key, the signer lookup)
// is validated (on the curve, not the point at infinity) before use, and a
// malformed one is refused with core.ErrInvalidKey.
//
// # SK message (and every C2 command)
//
//	LE64(ts) [8] | nonce [12] | CT [n] | tag [16]          overhead 36
//
// ts is Unix seconds. (nonce, CT, tag) = AES-256-GCM(key, random nonce,
// plaintext, AD = the 8 ts bytes). The nonce is drawn inside the module by
// cipher.NewGCMWithRandomNonce: fips140=only refuses caller-chosen GCM
// nonces. Because the nonce is random, Protect is not deterministic, and a
// key must not seal more than 2^32 messages (topic keys are rotated long
// before that).
//
// The receiver checks, in this order: the length (at most 36 bytes is
// refused with core.ErrInvalidProtectedLen), the timestamp window
// (core.CheckTimestamp), then the tag (core.ErrNotAuthentic). As in the
// standard suite, Protect of an empty plaintext still returns the 36-byte
// form, but Unprotect refuses it: an SK message or command always carries
// plaintext (every command has at least its code byte), so the receiver
// rejects a message that cannot be valid before doing any cryptography.
//
// # PK message (client to client)
//
//	LE64(ts) [8] | senderID [16] | nonce [12] | CT [n] | tag [16] | sig [64]
//	                                                        overhead 116
//
// (nonce, CT, tag) = AES-256-GCM(topic key, random nonce, plaintext,
// AD = ts || senderID): unlike the standard suite, the sender id is
// authenticated by the AEAD as well as by the signature. sig is ECDSA P-256
// over SHA-256(every preceding byte), encoded as the fixed 64-byte r || s
// (not ASN.1); the per-signature secret comes from the module's hedged
// generation (randomness mixed with the key and the digest).
//
// The receiver checks, in this order: the length (under 116 bytes is
// core.ErrInvalidProtectedLen; exactly 116, an empty plaintext, is
// accepted, as in the standard suite), the timestamp window, the signing key
// of senderID (core.ErrPubKeyNotFound if the lookup fails), the signature
// (core.ErrInvalidSignature; r and s must be in [1, n-1]), then the tag
// (core.ErrNotAuthentic). ECDSA signatures are malleable ((r, n-s) is also
// valid); nothing in E4 relies on a message having a single encoding.
//
// senderID is the 16-byte client id (SHA3-256(name)[:16]), which is not
// derived from the key, so ProtectSigned needs an identity that knows it:
// an Identity bound with Identity.WithClientID, or any core.Identity with a
// ClientID() []byte method (the convention all suites share, e.g.
// suitetest.BoundIdentity). An unbound identity is refused with
// core.ErrInvalidKey. Foreign core.Identity values are re-expanded from
// their seed on every call; binding a *fips.Identity avoids that cost.
//
// # Identity (PK)
//
// A client identity is one 32-byte seed; SetIdKey carries it and DeriveKey
// may produce it. It is expanded into two independent P-256 keys, because
// NIST SP 800-57 wants one key per purpose:
//
//	prk = HKDF-Extract(SHA-256, salt = "e4c2/fips/identity-v1", IKM = seed)
//	for i = 0, 1, ..., 255:
//	    c = HKDF-Expand(SHA-256, prk, info = label || byte(i), L = 32)
//	    if 1 <= c <= n-1 (c big-endian, n the P-256 order): d = c; stop
//
// with label "e4c2/fips/identity-v1/ecdsa-p256-signing" for the ECDSA key
// and "e4c2/fips/identity-v1/ecdh-p256-agreement" for the ECDH key (ASCII,
// no terminator; byte(i) is one byte). This is the rejection-sampling
// generation of FIPS 186-5 appendix A.2.2 with the random bits produced by
// an approved KDF from the seed (SP 800-133 rev. 2 section 6.3); a candidate
// is rejected with probability about 2^-32, and the comparison is constant
// time. The public key registered with C2 is ECDSA point || ECDH point
// (130 bytes); peers receive only the ECDSA point (SetPubKey).
//
// # C2 key and command key (PK)
//
// The C2 key is an ECDH P-256 key pair: private 32-byte scalar, public
// 65-byte point (SetC2Key). The key that protects commands to a client is
//
//	Z   = ECDH(c2 private, client ECDH point) = ECDH(client ECDH private, c2 point)
//	key = SHA3-256(BE32(1) || Z || "e4c2/fips/command-key-v1" || c2 point || client ECDH point)
//
// that is the SP 800-56C rev. 2 one-step KDF (option 1, H = SHA3-256, one
// block, FixedInfo = label || both public points), rather than a bare hash
// of Z, so that the derivation is an approved KDF and the key is bound to
// both parties' keys. Commands are then sealed in the SK layout under key.
// The client recomputes the key after SetIdKey and SetC2Key.
//
// # Password-derived keys
//
//	key = PBKDF2-HMAC-SHA256(password, salt = "e4c2/fips/password-v1",
//	                         iterations = 600000, length = 32)
//
// The password must be valid UTF-8 and at least 16 bytes
// (core.ErrInvalidPassword). The salt is a fixed domain-separation string
// (21 bytes, above the 128-bit minimum of fips140=only), not a random one,
// because a device and the C2 must derive the same key from the same
// password without exchanging anything; the cost is that one dictionary
// attack serves every deployment, so password-derived keys are for
// provisioning only and should be rotated. The same 32 bytes are the SK
// identity key or the PK identity seed.
package fips
