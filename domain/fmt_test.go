package domain_test

import (
	"fmt"

	"github.com/e4c2/e4c2/eventstore"
)

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }

func metaFixture() eventstore.Metadata { return eventstore.Metadata{Actor: "system"} }
