package client

import (
	"github.com/e4c2/e4c2/suites"
	"github.com/e4c2/e4c2/suites/core"
)

// testSuites returns the suites the behaviour tests run on: every suite of
// the registry, so that a new suite is covered without touching this file.
func testSuites() []core.Suite { return suites.All() }
