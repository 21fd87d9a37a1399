package client

import (
	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/fips"
	"github.com/e4c2/e4c2/suites/pq"
	"github.com/e4c2/e4c2/suites/standard"
)

// testSuites returns the suites the behaviour tests run on.
// TODO(registry): suites.All() once suites/registry.go exists.
func testSuites() []core.Suite {
	return []core.Suite{standard.New(), fips.New(), pq.New()}
}
