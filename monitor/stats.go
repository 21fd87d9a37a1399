package monitor

import (
	"sort"

	"github.com/e4c2/e4c2/domain"
)

// ClassCounts are message counts by class name.
type ClassCounts map[string]uint64

// TopicStats are the statistics of one managed topic since the start.
type TopicStats struct {
	Topic    string
	Messages uint64
	Bytes    uint64
	Classes  ClassCounts
	// Sizes counts messages per size bucket: Sizes[i] up to SizeBounds[i]
	// bytes, the last one above every bound.
	Sizes []uint64
	// Rate is messages per second in the last closed rate bucket;
	// Baseline the baseline it is judged against ("mean±band" per bucket).
	Rate     float64
	Baseline string
	// ReplayEvicted counts digests forgotten before their window was over.
	ReplayEvicted uint64
	// Spikes and Drops count the anomalous rate buckets.
	Spikes, Drops uint64
}

// ClientStats are the statistics of one publisher (Client zero: the
// publishers past Config.MaxClients together).
type ClientStats struct {
	Client   domain.ID
	Messages uint64
	Bytes    uint64
	Classes  ClassCounts
}

// Stats is the monitor's state for metrics and the console.
type Stats struct {
	QueueLen, QueueCap int
	// Offered messages, Dropped when the queue was full (the monitor then
	// samples), Classified, Unmanaged (not a managed topic).
	Offered, Dropped, Classified, Unmanaged uint64
	// Recorded findings and failed record attempts.
	Recorded, RecordErrors uint64
	Topics                 []TopicStats
	Clients                []ClientStats
}

// SizeBounds returns the upper bounds of the size buckets of TopicStats.
func SizeBounds() []int { return append([]int(nil), sizeBounds...) }

func (c *counts) named() ClassCounts {
	out := ClassCounts{}
	for i, n := range c.classes {
		if n > 0 {
			out[Class(i).String()] = n
		}
	}
	return out
}

func (c *counts) total() uint64 {
	var t uint64
	for _, n := range c.classes {
		t += n
	}
	return t
}

// Stats returns a snapshot of the counters.
func (m *Monitor) Stats() Stats {
	s := Stats{QueueLen: len(m.queue), QueueCap: cap(m.queue), Offered: m.offered.Load(),
		Dropped: m.dropped.Load(), Classified: m.classified.Load(), Unmanaged: m.unmanaged.Load(),
		Recorded: m.recorded.Load(), RecordErrors: m.recordErrs.Load()}
	m.mu.RLock()
	states := make([]*topicState, 0, len(m.topics))
	for _, ts := range m.topics {
		states = append(states, ts)
	}
	m.mu.RUnlock()
	for _, ts := range states {
		ts.smu.Lock()
		st := TopicStats{Topic: ts.name, Messages: ts.counts.total(), Bytes: ts.counts.bytes,
			Classes: ts.counts.named(), Sizes: append([]uint64(nil), ts.sizes...),
			Rate: ts.lastRate, Baseline: ts.baseline.String(), Spikes: ts.spikes, Drops: ts.drops}
		if ts.replay != nil {
			st.ReplayEvicted = ts.replay.evicted
		}
		ts.smu.Unlock()
		s.Topics = append(s.Topics, st)
	}
	sort.Slice(s.Topics, func(i, j int) bool { return s.Topics[i].Topic < s.Topics[j].Topic })
	m.cmu.Lock()
	for id, c := range m.clients {
		s.Clients = append(s.Clients, ClientStats{Client: id, Messages: c.total(), Bytes: c.bytes, Classes: c.named()})
	}
	m.cmu.Unlock()
	sort.Slice(s.Clients, func(i, j int) bool { return s.Clients[i].Client.String() < s.Clients[j].Client.String() })
	return s
}
