package monitor

import (
	"sync"
	"time"

	"github.com/e4c2/e4c2/domain"
)

// Finding kinds that are not message classes.
const (
	kindRateSpike = "rate_spike"
	kindRateDrop  = "rate_drop"
	kindSampled   = "sampled"
)

// Kinds returns every finding kind the monitor records.
func Kinds() []string {
	var out []string
	for _, c := range Classes() {
		if c.Finding() {
			out = append(out, c.String())
		}
	}
	return append(out, kindRateSpike, kindRateDrop, kindSampled)
}

// sizeBounds are the upper bounds (bytes) of the size histogram buckets.
var sizeBounds = []int{64, 128, 256, 512, 1024, 2048, 4096, 16384, 65536}

// topicState is what the monitor keeps per managed topic. mu guards keys
// (read-locked during classification, write-locked to replace and wipe
// them); smu the counters, the replay set and the rate baseline.
type topicState struct {
	name string
	hash domain.ID

	mu          sync.RWMutex
	keys        *TopicKeys
	keysVersion uint64

	smu         sync.Mutex
	counts      counts
	sizes       []uint64 // len(sizeBounds)+1 buckets
	replay      *replaySet
	baseline    *Baseline
	bucket      time.Duration
	bucketStart time.Time
	bucketCount uint64
	lastRate    float64 // messages per second in the last closed bucket
	spikes      uint64
	drops       uint64
	pending     []closedBucket // anomalies found by account, for Tick
}

func newTopicState(name string, h domain.ID, cfg Config, now time.Time) *topicState {
	ts := &topicState{name: name, hash: h, sizes: make([]uint64, len(sizeBounds)+1),
		baseline: NewBaseline(cfg.Baseline), bucket: cfg.RateBucket, bucketStart: now.Truncate(cfg.RateBucket)}
	if cfg.ReplayCapacity > 0 {
		w := cfg.Service.Window()
		ts.replay = newReplaySet(cfg.ReplayCapacity, w.MaxAge+w.MaxSkew+time.Second)
	}
	return ts
}

func (ts *topicState) replayed(d uint64, now time.Time) bool {
	if ts.replay == nil {
		return false
	}
	ts.smu.Lock()
	defer ts.smu.Unlock()
	return ts.replay.seenBefore(d, now)
}

func (ts *topicState) account(c Class, size int, now time.Time) {
	ts.smu.Lock()
	defer ts.smu.Unlock()
	if c < numClasses {
		ts.counts.classes[c]++
	}
	ts.counts.bytes += uint64(size)
	i := 0
	for i < len(sizeBounds) && size > sizeBounds[i] {
		i++
	}
	ts.sizes[i]++
	// A message past the bucket's end closes it first, so the count
	// lands in the bucket of its time whatever Tick's cadence.
	ts.pending = append(ts.pending, ts.closeBucketsLocked(now)...)
	ts.bucketCount++
}

// closedBucket is a rate bucket judged anomalous.
type closedBucket struct {
	end        time.Time
	count      uint64
	anomaly    Anomaly
	mean, band float64
}

// closeBuckets folds every bucket over at now into the baseline and
// returns the anomalous ones. Empty buckets count (a drop to zero is a
// finding), up to 1000 of them after a long pause.
func (ts *topicState) closeBuckets(now time.Time) []closedBucket {
	ts.smu.Lock()
	defer ts.smu.Unlock()
	out := append(ts.pending, ts.closeBucketsLocked(now)...)
	ts.pending = nil
	return out
}

func (ts *topicState) closeBucketsLocked(now time.Time) []closedBucket {
	var out []closedBucket
	for n := 0; !now.Before(ts.bucketStart.Add(ts.bucket)); n++ {
		end := ts.bucketStart.Add(ts.bucket)
		if n < 1000 {
			a, mean, band := ts.baseline.Observe(float64(ts.bucketCount))
			switch a {
			case Spike:
				ts.spikes++
			case Drop:
				ts.drops++
			}
			if a != Normal {
				out = append(out, closedBucket{end: end, count: ts.bucketCount, anomaly: a, mean: mean, band: band})
			}
		}
		ts.lastRate = float64(ts.bucketCount) / ts.bucket.Seconds()
		ts.bucketCount = 0
		ts.bucketStart = end
	}
	return out
}

// aggKey is what one finding event aggregates over (with the window).
type aggKey struct {
	kind   string
	topic  domain.ID
	client domain.ID
}

type aggValue struct {
	start      time.Time
	count      uint64
	keyVersion uint64
	detail     string
}

// aggregator counts findings per key in windows that open at the first
// occurrence and close FindingWindow later (or at Flush).
type aggregator struct {
	mu    sync.Mutex
	open  map[aggKey]*aggValue
	retry []domain.MonitorFinding
}

func (a *aggregator) add(k aggKey, keyVersion uint64, now time.Time, detail string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v := a.open[k]
	if v == nil {
		v = &aggValue{start: now, detail: detail}
		a.open[k] = v
	}
	v.count++
	if keyVersion != 0 {
		v.keyVersion = keyVersion
	}
	if detail != "" {
		v.detail = detail // the latest reason
	}
}

// due removes and returns the windows over at now (all when all), and
// the findings kept for a retry.
func (a *aggregator) due(now time.Time, window time.Duration, all bool) []domain.MonitorFinding {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.retry
	a.retry = nil
	for k, v := range a.open {
		if !all && now.Sub(v.start) < window {
			continue
		}
		end := now
		if !all {
			end = v.start.Add(window)
		}
		out = append(out, domain.MonitorFinding{Kind: k.kind, Topic: k.topic, Client: k.client,
			KeyVersion: v.keyVersion, WindowStart: uint64(v.start.Unix()), WindowEnd: uint64(end.Unix()),
			Count: v.count, Detail: v.detail})
		delete(a.open, k)
	}
	return out
}

// retry keeps findings that could not be recorded, up to 1024.
func (a *aggregator) retryLater(fs []domain.MonitorFinding) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.retry = append(a.retry, fs...)
	if len(a.retry) > 1024 {
		a.retry = a.retry[len(a.retry)-1024:]
	}
}
