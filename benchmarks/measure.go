package benchmarks

import (
	"time"
)

// chunkTarget is the wall time of one timed chunk of calls: long enough for
// the clock's resolution, short enough that many chunks fit in a
// measurement so the least disturbed one can be kept.
const chunkTarget = 2 * time.Millisecond

// calibrate returns how many calls of op make about one chunk.
func calibrate(op func()) int {
	t0 := time.Now()
	op()
	d := time.Since(t0)
	if d <= 0 {
		d = time.Nanosecond
	}
	n := int(chunkTarget / d)
	return min(max(n, 1), 1<<16)
}

func timeChunk(op func(), n int) time.Duration {
	t0 := time.Now()
	for range n {
		op()
	}
	return time.Since(t0)
}

// Pair times op and base alternately, chunk by chunk, for at least minTime
// (and at least three rounds), and returns the best per-call time of each
// in nanoseconds. On a shared, loaded machine the best chunk is the least
// disturbed one, and alternating puts both sides under the same
// conditions: the ratio of the two is the figure to report. base may be
// nil (then baseNs is 0).
func Pair(op, base func(), minTime time.Duration) (opNs, baseNs float64) {
	op() // warm caches and lazy initialisation before calibrating
	nOp := calibrate(op)
	nBase := 0
	if base != nil {
		base()
		nBase = calibrate(base)
	}
	bestOp, bestBase := time.Duration(1<<62), time.Duration(1<<62)
	start := time.Now()
	for round := 0; round < 3 || time.Since(start) < minTime; round++ {
		bestOp = min(bestOp, timeChunk(op, nOp)/time.Duration(nOp))
		if base != nil {
			bestBase = min(bestBase, timeChunk(base, nBase)/time.Duration(nBase))
		}
		if round > 1_000_000 {
			break
		}
	}
	opNs = float64(bestOp)
	if base != nil {
		baseNs = float64(bestBase)
	}
	// A per-call time below the clock's resolution rounds to 0; report
	// at least one nanosecond so ratios stay finite.
	return max(opNs, 1), baseNs
}

// Percentile returns the p-th percentile (0..100) of sorted durations
// (nearest rank).
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
