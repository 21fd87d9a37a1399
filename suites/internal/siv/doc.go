// Package siv implements AES-SIV (RFC 5297, AES-CMAC-SIV) as E4 uses it:
// a deterministic authenticated encryption with the 64-byte key k||k built
// from a 32-byte topic key k and exactly one associated-data component (the
// 8 timestamp bytes of the message). The output is SIV (16 bytes) || CT.
//
// The standard library has no AES-SIV, and the reference E4 client uses
// this exact construction, so every suite that carries an AES-SIV message
// layer (standard and pq) can share this one implementation instead of
// keeping its own copy. It is internal to suites: nothing outside the suite
// packages should build on a raw AEAD.
//
// The fips suite must not import this package: a hand-made mode of AES is
// not an approved algorithm, even though it is built on crypto/aes.
//
// Seal and Open take the 32-byte E4 key. The general form (two independent
// keys, any number of associated-data components) is kept unexported and is
// checked against RFC 5297 appendix A in the tests, so that the E4 form is
// known to be the real RFC algorithm and not merely self-consistent.
package siv
