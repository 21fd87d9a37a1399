package standard_test

import (
	"testing"

	"github.com/e4c2/e4c2/suites/standard"
	"github.com/e4c2/e4c2/suites/suitetest"
)

func TestConformance(t *testing.T) { suitetest.Run(t, standard.New()) }

// The zero Suite (no key cache) must behave the same.
func TestConformanceZeroValue(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the cached suite is covered by TestConformance")
	}
	suitetest.Run(t, &standard.Suite{})
}
