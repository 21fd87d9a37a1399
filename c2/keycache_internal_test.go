package c2

import (
	"testing"

	"github.com/e4c2/e4c2/projections"
)

// TestKeyCache: an entry comes back by stream and version only, and the
// cache never holds more than keyCacheMax entries.
func TestKeyCache(t *testing.T) {
	var c keyCache
	c.put(projections.KeyRef{Stream: "topic-a", Version: 2, Sealed: []byte{1}})
	if ref, ok := c.get("topic-a", 2); !ok || ref.Sealed[0] != 1 {
		t.Fatalf("get after put: %+v %v", ref, ok)
	}
	if _, ok := c.get("topic-a", 3); ok {
		t.Fatal("another version found")
	}
	if _, ok := c.get("topic-b", 2); ok {
		t.Fatal("another stream found")
	}
	for i := range keyCacheMax + 10 {
		c.put(projections.KeyRef{Stream: "topic-b", Version: uint64(i + 1)})
	}
	if n := len(c.m); n > keyCacheMax {
		t.Fatalf("%d entries, bound %d", n, keyCacheMax)
	}
}
