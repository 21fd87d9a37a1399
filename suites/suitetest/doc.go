// Package suitetest is the conformance test every E4 crypto suite runs.
//
// A suite package calls Run from one of its tests:
//
//	func TestConformance(t *testing.T) { suitetest.Run(t, mysuite.New()) }
//
// Run checks what the protocol requires of any suite, whatever its
// primitives: round trips at the sizes in Sizes, that every single-byte
// change and every truncation of a protected message is refused, that a
// wrong key, signer or C2 key is refused with the right protocol error, the
// exact edges of the timestamp window, that lengths match the overheads the
// suite declares in Sizes, and the key-handling contracts of Identity and
// C2Key (Bytes returns a copy, Parse round-trips). SK checks run only for
// suites whose Modes include SK, PK checks only for PK suites.
//
// Suite-specific behaviour (byte-exact vectors, error mapping of reference
// quirks) belongs in the suite's own tests.
package suitetest
