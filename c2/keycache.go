package c2

import (
	"sync"

	"github.com/e4c2/e4c2/projections"
)

// keyCacheMax bounds the superseded keys keyAt keeps (a few KiB each at
// most, sealed).
const keyCacheMax = 4096

// keyCache keeps the superseded keys keyAt read from the log, by stream
// and version. A record of the log never changes, so an entry never goes
// stale; it spares a rotation's fan-out one stream read per command for
// every recipient still owed an older key (a log read is a round trip to
// a networked store such as JetStream). Keys stay sealed, as in the log.
// The zero value is ready to use.
type keyCache struct {
	mu sync.Mutex
	m  map[keyCacheKey]projections.KeyRef
}

type keyCacheKey struct {
	stream  string
	version uint64
}

func (c *keyCache) get(stream string, version uint64) (projections.KeyRef, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ref, ok := c.m[keyCacheKey{stream, version}]
	return ref, ok
}

func (c *keyCache) put(ref projections.KeyRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= keyCacheMax {
		// Dropping everything at the bound is simpler than an LRU and
		// costs only re-reads.
		c.m = make(map[keyCacheKey]projections.KeyRef)
	}
	c.m[keyCacheKey{ref.Stream, ref.Version}] = ref
}
