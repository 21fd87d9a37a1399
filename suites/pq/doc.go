// Package pq is the post-quantum E4 suite ("pq"): E4 public-key mode with
// ML-DSA-65 client and C2 signatures (FIPS 204) and ML-KEM-768 command
// encapsulation (FIPS 203), both from github.com/cloudflare/circl. This
// comment is the suite's specification; testdata/pq-vectors.json holds
// vectors made from fixed seeds, and TestVectors regenerates them byte for
// byte (go test -run TestVectors -update rewrites the file after an
// intended change). testdata/crosscheck.py re-derives every vector with an
// independent implementation (Python cryptography on OpenSSL: ML-DSA,
// ML-KEM, AES-SIV, Argon2id, hashlib SHAKE/SHA3); TestCrossCheckPython runs
// it when python3 has such a cryptography and says it skipped otherwise.
//
// # Modes
//
// Only PK mode. In SK mode every key is a 256-bit AES key shared with C2,
// and AES-256 keeps about 128 bits of security against Grover's search:
// it is already quantum-safe, so a pq SK mode would be the standard suite
// under another name. The quantum threat is on the public-key parts (the
// Ed25519 signatures and the X25519 command key of the standard suite,
// which Shor's algorithm breaks), and that is what this suite replaces. The
// registry refuses pq+SK with this explanation. Protect and Unprotect (the
// symmetric layer) still exist: a pq C2 protects application traffic with
// topic keys exactly as the standard suite does.
//
// # Sizes (bytes)
//
//	item                                      size  what
//	id, topic hash                              16  SHA3-256(name or topic)[:16] (core.HashID)
//	topic key, identity seed, C2 seed           32  random, or DeriveKey
//	identity key (SetIdKey payload)             32  the identity seed
//	ML-DSA-65 public key                      1952  signing key of a client (SetPubKey) or of C2 (SetC2Key)
//	ML-KEM-768 encapsulation key              1184  command key of a client
//	client public key (registered with C2)    3136  ML-DSA-65 public key || ML-KEM-768 encapsulation key
//	ML-DSA-65 signature                       3309
//	ML-KEM-768 ciphertext                     1088
//	AES-SIV tag (SIV)                           16
//	SK (symmetric) overhead                     24  8 + 16
//	PK message overhead                       3349  8 + 16 + 16 + 3309
//	command overhead                          4421  8 + 1088 + 16 + 3309
//	SetPubKey command                         1969  code + 1952 + 16  (protected: 6390)
//	SetC2Key command                          1953  code + 1952       (protected: 6374)
//
// # Symmetric layer (application messages under a topic key)
//
//	LE64(ts) [8] | SIV [16] | CT [n]
//
// ts is Unix seconds, little-endian. SIV || CT = AES-SIV (RFC 5297,
// AES-CMAC-SIV) with the 64-byte key k || k, where k is the 32-byte topic
// key, and exactly one associated-data component, the 8 ts bytes: the same
// bytes as the standard suite for the same inputs. The receiver checks the
// length (24 bytes or fewer is refused), the timestamp window, then
// authenticity.
//
// # PK message (client to client)
//
//	LE64(ts) [8] | senderID [16] | SIV [16] | CT [n] | signature [3309]
//
// SIV || CT as in the symmetric layer (AD = ts only; the sender id is
// covered by the signature, not by the AEAD). signature =
// ML-DSA-65.Sign(sk, M, ctx = "e4c2/pq/message-v1") over M = every
// preceding byte (ts | senderID | SIV | CT), the pure (not pre-hashed)
// FIPS 204 form. senderID is the client id the signing identity is bound to
// (Identity.WithClientID), which C2 pairs with the signing key in SetPubKey.
// The receiver checks, in order: length (under 3349 bytes:
// ErrInvalidProtectedLen; exactly 3349 is an empty plaintext and is
// accepted), timestamp window, signer lookup by senderID
// (ErrPubKeyNotFound), the signature (ErrInvalidSignature), decryption
// (ErrNotAuthentic).
//
// # Identity (client key)
//
// One 32-byte seed, which SetIdKey carries and DeriveKey produces. It is
// expanded with SHAKE-256 and a label per key, so the two keys are
// independent and one purpose never reuses another's key:
//
//	ML-DSA-65 seed  xi (32) = SHAKE-256("e4c2/pq/identity/ml-dsa-65/v1" || seed)[:32]
//	                          ML-DSA.KeyGen_internal(xi)   (mldsa65.NewKeyFromSeed)
//	ML-KEM-768 seed d||z (64) = SHAKE-256("e4c2/pq/identity/ml-kem-768/v1" || seed)[:64]
//	                          ML-KEM.KeyGen_internal(d, z) (mlkem768.NewKeyFromSeed)
//
// PublicKey (registered with C2) = ML-DSA-65 public key || ML-KEM-768
// encapsulation key (3136). SigningPublicKey = its first 1952 bytes.
// CheckPublicKey checks the length, the FIPS 203 encapsulation key check
// (every coefficient below q) and refuses two degenerate forms that an
// unset buffer produces: an ML-DSA-65 key whose t1 is all zero (anyone can
// sign for it) and an ML-KEM-768 key whose t-hat is all zero (anyone can
// read what is encapsulated to it). Every other 1952-byte string is a
// valid ML-DSA-65 public key encoding. The same ML-DSA check applies to
// SetPubKey and SetC2Key keys and to the keys the signer lookup returns.
//
// # C2 key
//
// An ML-DSA-65 key pair from a 32-byte seed used directly as xi
// (ML-DSA.KeyGen_internal(seed)); Bytes is the seed, PublicKey the 1952-byte
// ML-DSA-65 public key, which SetC2Key carries. C2 has no KEM key: a KEM
// only authenticates the receiver, so the command is encapsulated to the
// client and signed by C2.
//
// # Command (C2 to client)
//
//	LE64(ts) [8] | c [1088] | SIV [16] | CT [n] | C2 signature [3309]
//
//	(c, ss)     = ML-KEM-768.Encaps(client encapsulation key; fresh 32-byte m)
//	command key = SHA3-256(ss || c)
//	SIV || CT   = AES-SIV(key || key, AD = the 8 ts bytes, command)
//	signature   = ML-DSA-65.Sign(C2 key, every preceding byte, ctx = "e4c2/pq/command-v1")
//
// Hashing c into the key binds it to this encapsulation (as the X-Wing and
// HPKE combiners do). The command reaches only the client whose
// decapsulation key recovers ss: the same bytes replayed to another client
// decapsulate (ML-KEM implicit rejection) to an unrelated key and fail
// authentication. ProtectCommand seals an empty command too, as Protect
// does. The client checks, in order: length (CommandOverhead bytes or
// fewer: ErrInvalidProtectedLen; an empty command is refused as in SK
// mode), the C2 public key (ErrInvalidKey), the timestamp window, C2's
// signature (ErrInvalidSignature), then decapsulates and decrypts
// (ErrNotAuthentic). Checking the signature first means nobody but C2 can
// make a client run decapsulations. A command is always a fresh
// encapsulation, so two protections of one command differ.
//
// # Signing: hedged, with deterministic variants for vectors
//
// ProtectSigned and ProtectCommand sign with hedged ML-DSA (FIPS 204 default:
// 32 fresh random bytes rnd mixed with the key): devices are physically
// exposed, and randomization defeats fault and side-channel attacks that
// work against deterministic signing. Deterministic variants (rnd = 0, the
// FIPS 204 deterministic variant, and explicit ML-KEM randomness) exist
// only in this package's tests (export_test.go), so that the vectors are
// reproducible without giving any production caller a way to reuse a
// command key; verification cannot tell the variants apart.
//
// # Password derivation
//
// DeriveKey(password) = Argon2id(password, salt = "e4c2/pq/password-v1",
// t = 3, m = 64 MiB, p = 4, 32 bytes), the second recommended option of
// RFC 9106 section 4. The password must be valid UTF-8 of at least 16 bytes
// (ErrInvalidPassword). The salt is a fixed domain label, not random: the
// same password must give the same identity seed on the device and at C2,
// and the label keeps the result apart from every other suite's KDF. A
// fixed salt lets an attacker precompute against all pq deployments at
// once, hence the memory-hard parameters and the length floor; keys that C2
// keeps for itself use Argon2id with a random salt instead.
//
// # Errors and robustness
//
// Every malformed key (wrong length, an encapsulation key that fails the
// FIPS 203 check, a degenerate key, a key of another suite) returns
// ErrInvalidKey; no input
// of any length panics (sizes are checked before any circl call that would
// panic on them). Messages never include key bytes.
package pq
