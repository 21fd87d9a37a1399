package mqtt

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics receives the worker's events. Implementations must be safe for
// concurrent use and fast: they are called on the delivery path.
type Metrics interface {
	Published()       // a publish was attempted (handed to the broker)
	Delivered()       // an item was confirmed and recorded delivered
	Retried()         // a counted attempt failed and will be retried
	Failed()          // an item was recorded failed
	Unavailable()     // a wait because the broker was unreachable (not counted as an attempt)
	QueueDepth(n int) // items buffered in the worker (in flight, waiting or backing off)
	InFlight(n int)   // window slots in use
}

// NopMetrics discards everything.
type NopMetrics struct{}

// Published implements Metrics.
func (NopMetrics) Published() {}

// Delivered implements Metrics.
func (NopMetrics) Delivered() {}

// Retried implements Metrics.
func (NopMetrics) Retried() {}

// Failed implements Metrics.
func (NopMetrics) Failed() {}

// Unavailable implements Metrics.
func (NopMetrics) Unavailable() {}

// QueueDepth implements Metrics.
func (NopMetrics) QueueDepth(int) {}

// InFlight implements Metrics.
func (NopMetrics) InFlight(int) {}

// PrometheusMetrics exposes the worker's metrics as Prometheus collectors.
type PrometheusMetrics struct {
	published, delivered, retries, failures, unavailable prometheus.Counter
	queueDepth, inFlight                                 prometheus.Gauge
}

// NewPrometheusMetrics creates the collectors and registers them on reg
// (never the global default registry: the composition root owns it). Names
// are prefixed "e4c2_delivery_".
func NewPrometheusMetrics(reg prometheus.Registerer) (*PrometheusMetrics, error) {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "e4c2", Subsystem: "delivery", Name: name, Help: help})
	}
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "e4c2", Subsystem: "delivery", Name: name, Help: help})
	}
	m := &PrometheusMetrics{
		published:   c("published_total", "Publish attempts handed to the MQTT broker."),
		delivered:   c("delivered_total", "Commands confirmed by the broker (PUBCOMP) and recorded delivered."),
		retries:     c("retries_total", "Failed attempts that will be retried."),
		failures:    c("failed_total", "Commands recorded failed after bounded retries."),
		unavailable: c("unavailable_total", "Waits because the broker was unreachable (not counted as attempts)."),
		queueDepth:  g("queue_depth", "Commands buffered in the delivery worker."),
		inFlight:    g("in_flight", "Unconfirmed publishes (window slots in use)."),
	}
	for _, col := range []prometheus.Collector{m.published, m.delivered, m.retries, m.failures, m.unavailable, m.queueDepth, m.inFlight} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("mqtt: register metrics: %w", err)
		}
	}
	return m, nil
}

// Published implements Metrics.
func (m *PrometheusMetrics) Published() { m.published.Inc() }

// Delivered implements Metrics.
func (m *PrometheusMetrics) Delivered() { m.delivered.Inc() }

// Retried implements Metrics.
func (m *PrometheusMetrics) Retried() { m.retries.Inc() }

// Failed implements Metrics.
func (m *PrometheusMetrics) Failed() { m.failures.Inc() }

// Unavailable implements Metrics.
func (m *PrometheusMetrics) Unavailable() { m.unavailable.Inc() }

// QueueDepth implements Metrics.
func (m *PrometheusMetrics) QueueDepth(n int) { m.queueDepth.Set(float64(n)) }

// InFlight implements Metrics.
func (m *PrometheusMetrics) InFlight(n int) { m.inFlight.Set(float64(n)) }
