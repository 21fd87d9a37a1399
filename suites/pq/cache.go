package pq

import (
	"sync"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// maxCachedKeys bounds the decoded-key cache. A decoded ML-DSA-65 public
// key holds its expanded matrix A (about 31 KiB), so 64 entries cost about
// 2 MiB: enough for a device's peers and C2 key, small enough for a C2 that
// checks thousands of senders (which then decodes most keys afresh).
const maxCachedKeys = 64

// keyCache memoizes decoded ML-DSA-65 public keys by their encoding.
// Decoding expands the 6x5 matrix A from rho with SHAKE-128, which costs
// about three times a verification; the signer lookup and the C2 key come
// in as bytes on every message, so without the cache every check would pay
// it again. Keys are public and cached under their full encoding, so the
// cache cannot confuse two keys and holds nothing secret.
type keyCache struct {
	mu sync.Mutex
	m  map[string]*mldsa65.PublicKey
}

// get returns the decoded key for a 1952-byte encoding (the caller checks
// the length).
func (c *keyCache) get(pub []byte) *mldsa65.PublicKey {
	c.mu.Lock()
	k, ok := c.m[string(pub)]
	c.mu.Unlock()
	if ok {
		return k
	}
	k = new(mldsa65.PublicKey)
	k.Unpack((*[SigningPublicKeySize]byte)(pub))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*mldsa65.PublicKey)
	}
	if len(c.m) >= maxCachedKeys {
		// Evict an arbitrary entry: simple, bounded, and good enough for
		// the working sets above.
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[string(pub)] = k
	return k
}
