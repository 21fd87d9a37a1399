package pq_test

import (
	"testing"

	"github.com/e4c2/e4c2/suites/pq"
	"github.com/e4c2/e4c2/suites/suitetest"
)

// TestConformance runs the protocol checks every suite must pass.
func TestConformance(t *testing.T) { suitetest.Run(t, pq.New()) }
