//go:build !race

package standard_test

import (
	"testing"

	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/standard"
)

// TestAllocs pins the allocation budget of the SK path (an allocation
// count, not a timing: deterministic). Excluded under -race, whose
// instrumentation allocates.
func TestAllocs(t *testing.T) {
	s, key := standard.New(), benchKey()
	for _, n := range []int{0, 15, 64, 1024, 4096} {
		msg := make([]byte, n)
		var p []byte
		if a := testing.AllocsPerRun(50, func() { p, _ = s.Protect(key, msg, benchTS) }); a > 2 {
			t.Errorf("Protect(%d bytes): %.1f allocations, want <= 2", n, a)
		}
		if n == 0 {
			continue
		}
		if a := testing.AllocsPerRun(50, func() { _, _ = s.Unprotect(key, p, benchTS, core.DefaultWindow()) }); a > 2 {
			t.Errorf("Unprotect(%d bytes): %.1f allocations, want <= 2", n, a)
		}
	}
}
