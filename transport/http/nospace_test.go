package http

import (
	"fmt"
	"testing"

	"github.com/e4c2/e4c2/eventstore"
)

// TestNoSpaceIs507: a store whose disk is full answers 507 with a stable
// code, not a generic 500.
func TestNoSpaceIs507(t *testing.T) {
	err := fmt.Errorf("c2: append: boltstore: commit: %w", fmt.Errorf("%w: write: no space left on device", eventstore.ErrNoSpace))
	st, code, msg := classify(err)
	if st != 507 || code != "insufficient_storage" {
		t.Fatalf("disk full: %d %s (%s), want 507 insufficient_storage", st, code, msg)
	}
}
