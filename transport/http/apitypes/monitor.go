package apitypes

import "time"

// Finding is one finding of the traffic monitor (monitor.finding.v1):
// messages of one kind on one topic from one publisher within one
// window. It never holds a payload or a key.
type Finding struct {
	Position    uint64    `json:"position"` // global position of the event
	Time        time.Time `json:"time"`     // when it was recorded
	Kind        string    `json:"kind"`
	Topic       string    `json:"topic,omitempty"` // name, when known
	TopicHash   string    `json:"topic_hash,omitempty"`
	Client      string    `json:"client,omitempty"`    // publisher name, when known
	ClientID    string    `json:"client_id,omitempty"` // publisher id, hex, when known
	KeyVersion  uint64    `json:"key_version,omitempty"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Count       uint64    `json:"count"`
	Reason      string    `json:"reason,omitempty"`
}

// FindingList is the answer of GET /findings: the findings in the log,
// newest first, and whether this instance's monitor runs (the findings
// may come from another instance, or from before it was turned off).
type FindingList struct {
	Items          []Finding `json:"items"`
	MonitorEnabled bool      `json:"monitor_enabled"`
}

// MonitorStatus is the answer of GET /monitor: this instance's monitor,
// or only Enabled false when it is off.
type MonitorStatus struct {
	Enabled bool           `json:"enabled"`
	Queue   *MonitorQueue  `json:"queue,omitempty"`
	Counts  *MonitorCounts `json:"counts,omitempty"`
	Topics  []MonitorTopic `json:"topics,omitempty"`
	// Clients are the publishers the monitor counted (the embedded broker
	// names them); ClientID "" stands for those past its limit.
	Clients []MonitorClient `json:"clients,omitempty"`
}

// MonitorQueue is the queue of messages waiting for classification.
type MonitorQueue struct {
	Size int `json:"size"`
	Used int `json:"used"`
}

// MonitorCounts are the monitor's counters since its start.
type MonitorCounts struct {
	Offered    uint64 `json:"offered"`
	Classified uint64 `json:"classified"`
	// Dropped messages found the queue full: the monitor watched a sample
	// (reported as "sampled" findings); Sampling says it happened.
	Dropped      uint64 `json:"dropped"`
	Sampling     bool   `json:"sampling"`
	Unmanaged    uint64 `json:"unmanaged"`
	Findings     uint64 `json:"findings_recorded"`
	RecordErrors uint64 `json:"record_errors"`
}

// MonitorTopic is the traffic of one managed topic since the start.
type MonitorTopic struct {
	Topic    string  `json:"topic"`
	Messages uint64  `json:"messages"`
	Bytes    uint64  `json:"bytes"`
	Rate     float64 `json:"rate"` // messages/s of the last rate bucket
	Baseline string  `json:"baseline,omitempty"`
	Spikes   uint64  `json:"spikes"`
	Drops    uint64  `json:"drops"`
	// Classes counts the messages by class; Shares is each class's
	// fraction of Messages (0..1).
	Classes map[string]uint64  `json:"classes"`
	Shares  map[string]float64 `json:"shares"`
}

// MonitorClient is the traffic of one publisher since the start.
type MonitorClient struct {
	ClientID string            `json:"client_id"`
	Client   string            `json:"client,omitempty"` // name, when known
	Messages uint64            `json:"messages"`
	Bytes    uint64            `json:"bytes"`
	Classes  map[string]uint64 `json:"classes"`
}
