package monitor

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes a monitor's Stats as Prometheus series, read at scrape
// time (the classification path only bumps its own counters).
type Collector struct{ m *Monitor }

// NewCollector returns the collector of m.
func NewCollector(m *Monitor) *Collector { return &Collector{m: m} }

var (
	descMessages = prometheus.NewDesc("e4c2_monitor_messages_total",
		"Messages classified on a managed topic, by class (current, previous, old_key, forged, plaintext, stale, future, replay, unknown_signer, not_member, consumer_publish).",
		[]string{"topic", "class"}, nil)
	descBytes = prometheus.NewDesc("e4c2_monitor_bytes_total",
		"Bytes of the messages classified on a managed topic.", []string{"topic"}, nil)
	descSizes = prometheus.NewDesc("e4c2_monitor_message_size_bytes",
		"Size distribution of the messages of a managed topic.", []string{"topic"}, nil)
	descRate = prometheus.NewDesc("e4c2_monitor_rate",
		"Messages per second on a managed topic in the last closed rate bucket.", []string{"topic"}, nil)
	descAnomalies = prometheus.NewDesc("e4c2_monitor_rate_anomalies_total",
		"Rate buckets outside the topic's baseline band, by kind (rate_spike, rate_drop).", []string{"topic", "kind"}, nil)
	descClient = prometheus.NewDesc("e4c2_monitor_client_messages_total",
		"Messages classified per publisher (device id; empty: the publishers beyond the per-client bound together), by class.",
		[]string{"client", "class"}, nil)
	descQueue    = prometheus.NewDesc("e4c2_monitor_queue_length", "Messages waiting for classification.", nil, nil)
	descQueueCap = prometheus.NewDesc("e4c2_monitor_queue_capacity", "Bound of the classification queue.", nil, nil)
	descOffered  = prometheus.NewDesc("e4c2_monitor_offered_total", "Messages handed to the monitor by its source.", nil, nil)
	descDropped  = prometheus.NewDesc("e4c2_monitor_dropped_total",
		"Messages not classified because the queue was full: the monitor is sampling.", nil, nil)
	descUnmanaged = prometheus.NewDesc("e4c2_monitor_unmanaged_total", "Messages on topics the C2 does not manage (ignored).", nil, nil)
	descRecorded  = prometheus.NewDesc("e4c2_monitor_findings_recorded_total", "Finding events appended to the log.", nil, nil)
	descRecordErr = prometheus.NewDesc("e4c2_monitor_record_errors_total", "Failed appends of findings (retried).", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMessages, descBytes, descSizes, descRate, descAnomalies, descClient,
		descQueue, descQueueCap, descOffered, descDropped, descUnmanaged, descRecorded, descRecordErr} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Every class has a series per
// topic (zero included), so that dashboards and alerts see a class before
// its first message.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.m.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, t := range st.Topics {
		for _, cl := range Classes() {
			counter(descMessages, t.Classes[cl.String()], t.Topic, cl.String())
		}
		counter(descBytes, t.Bytes, t.Topic)
		buckets := make(map[float64]uint64, len(sizeBounds))
		var cum uint64
		for i, b := range sizeBounds {
			cum += t.Sizes[i]
			buckets[float64(b)] = cum
		}
		ch <- prometheus.MustNewConstHistogram(descSizes, t.Messages, float64(t.Bytes), buckets, t.Topic)
		gauge(descRate, t.Rate, t.Topic)
		counter(descAnomalies, t.Spikes, t.Topic, kindRateSpike)
		counter(descAnomalies, t.Drops, t.Topic, kindRateDrop)
	}
	for _, cs := range st.Clients {
		id := ""
		if !cs.Client.IsZero() {
			id = cs.Client.String()
		}
		for name, n := range cs.Classes {
			counter(descClient, n, id, name)
		}
	}
	gauge(descQueue, float64(st.QueueLen))
	gauge(descQueueCap, float64(st.QueueCap))
	counter(descOffered, st.Offered)
	counter(descDropped, st.Dropped)
	counter(descUnmanaged, st.Unmanaged)
	counter(descRecorded, st.Recorded)
	counter(descRecordErr, st.RecordErrors)
}
