package monitor

import (
	"fmt"
	"math"
)

// BaselineConfig tunes the per-topic rate baseline (see Baseline).
type BaselineConfig struct {
	// Alpha is the EWMA weight of a new bucket (default 0.1: the baseline
	// remembers about the last 10 buckets, 1/Alpha).
	Alpha float64
	// K is the width of the band in standard deviations (default 4).
	K float64
	// MinDelta is the smallest deviation, in messages per bucket, that
	// counts as an anomaly, so that a quiet topic's tiny variance does not
	// flag every extra message (default 5).
	MinDelta float64
	// Warmup is the number of buckets observed before anomalies are
	// reported (default 12).
	Warmup int
}

func (c BaselineConfig) withDefaults() BaselineConfig {
	if c.Alpha <= 0 || c.Alpha > 1 {
		c.Alpha = 0.1
	}
	if c.K <= 0 {
		c.K = 4
	}
	if c.MinDelta <= 0 {
		c.MinDelta = 5
	}
	if c.Warmup <= 0 {
		c.Warmup = 12
	}
	return c
}

// Baseline is the rate baseline of one topic: an exponentially weighted
// moving average of the message count per bucket and of its squared
// deviation (EWMA mean and variance, as in Welford's update with
// exponential forgetting). A bucket whose count x lies outside
//
//	mean ± max(K·stddev, MinDelta)
//
// is an anomaly: a spike above, a drop below. Anomalous buckets are folded
// into the baseline clipped to the band's edge and with a tenth of the
// weight, so a lasting change of
// traffic becomes the new normal after a while (about 10/Alpha buckets)
// instead of being reported forever, while a short burst barely moves it.
// No anomaly is reported during the first Warmup buckets.
type Baseline struct {
	cfg      BaselineConfig
	mean     float64
	variance float64
	buckets  int
}

// NewBaseline returns an empty baseline.
func NewBaseline(cfg BaselineConfig) *Baseline { return &Baseline{cfg: cfg.withDefaults()} }

// Anomaly is the verdict on one bucket.
type Anomaly int

// The anomalies.
const (
	Normal Anomaly = iota
	Spike
	Drop
)

// Observe folds the count of one bucket in and returns its verdict, with
// the band it was judged against.
func (b *Baseline) Observe(x float64) (a Anomaly, mean, band float64) {
	mean, band = b.mean, b.band()
	if b.buckets >= b.cfg.Warmup {
		switch {
		case x > mean+band:
			a = Spike
		case x < mean-band:
			a = Drop
		}
	}
	alpha := b.cfg.Alpha
	if a != Normal {
		alpha /= 10
	}
	if b.buckets == 0 {
		b.mean = x
	} else {
		d := x - b.mean
		if a != Normal {
			d = math.Copysign(band, d) // clipped: one outlier must not widen the band
		}
		b.mean += alpha * d
		b.variance = (1 - alpha) * (b.variance + alpha*d*d)
	}
	b.buckets++
	return a, mean, band
}

func (b *Baseline) band() float64 {
	return math.Max(b.cfg.K*math.Sqrt(b.variance), b.cfg.MinDelta)
}

// String describes the baseline (for finding details).
func (b *Baseline) String() string {
	return fmt.Sprintf("%.1f±%.1f", b.mean, b.band())
}
