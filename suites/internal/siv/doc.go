// Package siv implements AES-SIV (RFC 5297, AES-CMAC-SIV) as E4 uses it:
// a deterministic authenticated encryption with the 64-byte key k||k built
// from a 32-byte topic key k and exactly one associated-data component (the
// 8 timestamp bytes of the message). The output is SIV (16 bytes) || CT.
//
// The standard library has no AES-SIV, and the reference E4 client uses
// this exact construction, so every suite that carries an AES-SIV message
// layer (standard and pq) shares this one implementation. It is internal to
// suites: nothing outside the suite packages should build on a raw AEAD.
//
// The fips suite must not import this package: a hand-made mode of AES is
// not an approved algorithm, even though it is built on crypto/aes (its
// dependency-graph test enforces that).
//
// A *SIV (New) holds the expanded key: the AES key schedule, the CMAC
// subkeys and dbl(CMAC(0)), so sealing many messages under one key does not
// repeat the setup. A Cache maps raw keys to their *SIV for callers that
// receive key bytes on every call. Seal and Open are one-shot forms.
//
// Performance: the CMAC chain is inherently serial and runs one block call
// at a time without allocating. The counter mode is the standard library's
// cipher.NewCTR, which costs one allocation for its state per message.
// Security code should be boring: an earlier allocation-free counter mode
// that steered AES-GCM onto the SIV counter (a GF(2^128) inversion per
// key) saved that allocation but was not faster on Go 1.26, whose AES-CTR
// is assembly: SK Protect of 1 KiB measured 1.23-1.26 times the CBC+CTR
// floor with it and 1.12-1.17 times without.
//
// Tests: the fast implementation is checked against RFC 5297 A.1, the
// reference library's aes_siv vectors, and differentially against a plain
// test-only implementation (reference_test.go) that is itself checked
// against RFC 5297 A.1 and A.2 (several AD components, a nonce).
package siv
