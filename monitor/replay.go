package monitor

import "time"

// replaySet remembers the digests of the authentic messages of one topic
// seen inside the timestamp window, to tell a replay from a new message.
// It is bounded: past capacity the oldest digest is forgotten (counted in
// evicted), so a replay of a message older than the last capacity
// messages goes unnoticed unless its timestamp is already stale. Entries
// also expire once the window they could be replayed in is over: a replay
// after that is classified stale by its timestamp. Not safe for
// concurrent use (the topic's lock guards it). The ring grows with the
// digests it holds, up to capacity: a quiet topic costs little.
type replaySet struct {
	seen     map[uint64]struct{}
	ring     []replayEntry // insertion order, a circular buffer
	head, n  int
	keep     time.Duration
	evicted  uint64
	capacity int
}

type replayEntry struct {
	digest uint64
	at     int64 // Unix ns of insertion
}

func newReplaySet(capacity int, keep time.Duration) *replaySet {
	return &replaySet{seen: make(map[uint64]struct{}), keep: keep, capacity: capacity}
}

// minReplayRing is the ring's first size.
const minReplayRing = 16

// grow doubles the ring (at least minReplayRing, at most capacity),
// keeping the entries in insertion order from index 0.
func (r *replaySet) grow() {
	ring := make([]replayEntry, min(max(2*len(r.ring), minReplayRing), r.capacity))
	for i := range r.n {
		ring[i] = r.ring[(r.head+i)%len(r.ring)]
	}
	r.ring, r.head = ring, 0
}

// seenBefore records digest d at now and reports whether it was already
// there.
func (r *replaySet) seenBefore(d uint64, now time.Time) bool {
	ns := now.UnixNano()
	for r.n > 0 && ns-r.ring[r.head].at > int64(r.keep) {
		r.pop()
	}
	if _, ok := r.seen[d]; ok {
		return true
	}
	if r.capacity == 0 {
		return false
	}
	if r.n == len(r.ring) && len(r.ring) < r.capacity {
		r.grow()
	}
	if r.n == len(r.ring) {
		r.pop()
		r.evicted++
	}
	r.ring[(r.head+r.n)%len(r.ring)] = replayEntry{digest: d, at: ns}
	r.n++
	r.seen[d] = struct{}{}
	return false
}

func (r *replaySet) pop() {
	delete(r.seen, r.ring[r.head].digest)
	r.head = (r.head + 1) % len(r.ring)
	r.n--
}
