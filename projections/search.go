package projections

import (
	"bytes"
	"encoding/hex"
	"strings"
)

// SearchClients returns up to limit registered clients whose name
// contains sub (ASCII case-insensitive) or whose id starts with the bytes
// of sub read as hex (an even number of hex digits), in registration order
// from cursor, and the cursor of the next page (0 when the search is
// done). It looks at names and ids only, so a search that scans every
// client allocates nothing per client.
func (k *KeyState) SearchClients(sub string, cursor, limit int) ([]ClientInfo, int) {
	sub = strings.ToLower(sub)
	prefix, err := hex.DecodeString(sub)
	if err != nil || len(prefix) == 0 {
		prefix = nil
	}
	return k.clientsWhere(cursor, limit, func(c *clientRec) bool {
		return strings.Contains(strings.ToLower(c.name), sub) || (prefix != nil && bytes.HasPrefix(c.id[:], prefix))
	})
}

// clientsWhere is the one paging loop of the client lists: up to limit
// live clients that match (nil: all) from cursor, in registration order,
// and the cursor of the next page (0 when there is none).
func (k *KeyState) clientsWhere(cursor, limit int, match func(*clientRec) bool) ([]ClientInfo, int) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var out []ClientInfo
	for i := max(cursor, 0); i < len(k.clients); i++ {
		c := &k.clients[i]
		if !c.live || (match != nil && !match(c)) {
			continue
		}
		if len(out) == limit {
			return out, i
		}
		out = append(out, c.info(c.isPK()))
	}
	return out, 0
}
