package suitetest

import (
	"slices"
	"testing"
)

// TestTamperPositionsCoverage checks the promise of tamperPositions: short
// messages and short signatures exhaustively; in a long message with a long
// signature, every non-signature overhead byte at both ends, and the first
// and last edgeBytes of the ciphertext and of the signature.
func TestTamperPositionsCoverage(t *testing.T) {
	const pqSig, pqPK, pqCmd = 3309, 3349, 4421
	for _, tc := range []struct{ plain, overhead, sig int }{
		{65536, 24, 0}, {65536, 104, 64}, {65536, 116, 64}, // standard, fips
		{1000, pqPK, pqSig}, {65536, pqPK, pqSig}, {17, pqCmd, pqSig}, {65536, pqCmd, pqSig},
	} {
		n := tc.plain + tc.overhead
		got := tamperPositions(n, tc.overhead, tc.sig)
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("%+v: positions not strictly increasing", tc)
		}
		has := make([]bool, n)
		for _, p := range got {
			if p < 0 || p >= n {
				t.Fatalf("%+v: position %d out of range", tc, p)
			}
			has[p] = true
		}
		if tc.plain <= exhaustivePlain || tc.sig <= 2*edgeBytes {
			if want := positions(n, tc.overhead); !slices.Equal(got, want) {
				t.Fatalf("%+v: differs from positions", tc)
			}
			if tc.plain <= exhaustivePlain && len(got) != n {
				t.Fatalf("%+v: %d of %d positions, want all", tc, len(got), n)
			}
			continue
		}
		other := tc.overhead - tc.sig
		must := func(from, to int, what string) {
			for i := from; i < to; i++ {
				if !has[i] {
					t.Fatalf("%+v: byte %d (%s) not tried", tc, i, what)
				}
			}
		}
		sigStart := n - tc.sig
		must(0, other+edgeBytes, "header and first ciphertext bytes")
		must(sigStart-other-edgeBytes, sigStart, "last ciphertext bytes and tag")
		must(sigStart, sigStart+edgeBytes, "first signature bytes")
		must(n-edgeBytes, n, "last signature bytes")
		if len(got) >= len(positions(n, tc.overhead)) {
			t.Fatalf("%+v: sampling saves nothing (%d positions)", tc, len(got))
		}
		t.Logf("%+v: %d of %d positions", tc, len(got), len(positions(n, tc.overhead)))
	}
}
