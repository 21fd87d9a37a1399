package fips_test

import (
	"testing"

	"github.com/e4c2/e4c2/suites/fips"
	"github.com/e4c2/e4c2/suites/suitetest"
)

// TestConformance runs the conformance checks every E4 suite passes.
func TestConformance(t *testing.T) { suitetest.Run(t, fips.New()) }
