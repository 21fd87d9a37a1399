package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/eventstore"
)

// metrics are the server's Prometheus collectors, on a registry of their own
// (never the global default, so tests can build several servers).
type metrics struct {
	reg        *prometheus.Registry
	published  prometheus.Counter
	delivered  prometheus.Counter
	retries    prometheus.Counter
	failures   prometheus.Counter
	unavail    prometheus.Counter
	inWorker   prometheus.Gauge
	inFlight   prometheus.Gauge
	storeOps   *prometheus.HistogramVec
	operations *prometheus.CounterVec
	// automation engine restarts after it stopped on an error
	automationRestarts prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "e4c2_delivery_published_total", Help: "Command publishes handed to the broker."}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "e4c2_delivery_delivered_total", Help: "Commands confirmed by the broker (QoS 2 complete) and recorded."}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "e4c2_delivery_retries_total", Help: "Failed publish attempts that will be retried."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "e4c2_delivery_failed_total", Help: "Commands given up after the retry bound."}),
		unavail: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "e4c2_delivery_broker_unavailable_total", Help: "Waits because the broker was unreachable."}),
		inWorker: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "e4c2_delivery_worker_items", Help: "Items buffered in the delivery worker."}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "e4c2_delivery_inflight", Help: "Unconfirmed publishes in flight."}),
		storeOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "e4c2_store_seconds", Help: "Event store call latency.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, []string{"op"}),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "e4c2_store_appends_total", Help: "Event store appends by outcome."}, []string{"outcome"}),
		automationRestarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "e4c2_automation_restarts_total", Help: "Restarts of the automation engine after it stopped on an error (e.g. its log subscription dropped)."}),
	}
	m.reg.MustRegister(m.published, m.delivered, m.retries, m.failures, m.unavail,
		m.inWorker, m.inFlight, m.storeOps, m.operations, m.automationRestarts,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// watchService registers the gauges read from the service's projections.
func (m *metrics) watchService(svc *c2.Service) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "e4c2_delivery_queue_depth", Help: "Commands queued and not yet delivered or failed."},
			func() float64 { return float64(svc.PendingCount()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "e4c2_clients", Help: "Registered clients."},
			func() float64 { return float64(svc.CountClients()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "e4c2_topics", Help: "Topics."},
			func() float64 { return float64(svc.CountTopics()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "e4c2_log_position", Help: "Global log position applied to the read models."},
			func() float64 { return float64(svc.Position()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "e4c2_commands_confirmed_total",
			Help: "Queued commands the devices' own MQTT sessions confirmed (command.confirmed.v1 in the log; a broker's acceptance alone is e4c2_delivery_delivered_total)."},
			func() float64 { return float64(svc.Confirmations()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "e4c2_log_following", Help: "1 while the read models follow the log, 0 while they subscribe again after the store dropped their subscription or once they stopped."},
			func() float64 {
				if svc.FollowErr() != nil {
					return 0
				}
				return 1
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "e4c2_log_subscription_drops_total", Help: "Subscriptions of the read models to the log that the store dropped (each followed by a new one)."},
			func() float64 { return float64(svc.Resubscriptions()) }),
		&fleetCollector{svc: svc},
	)
}

// fleetDesc is e4c2_devices{status}.
var fleetDesc = prometheus.NewDesc("e4c2_devices",
	"Registered devices by sync status: in_sync (seen, nothing pending, every desired key accepted or confirmed), lagging, never_seen (not connected since registration).",
	[]string{"status"}, nil)

// releasedDesc and waitingDesc: the devices never seen that an operator
// released, and the commands of the others, held by the C2 (an external
// broker gets them at a sighting or a release; alert on it growing).
var (
	releasedDesc = prometheus.NewDesc("e4c2_devices_released",
		"Registered devices never seen whose commands an operator released to the broker (device.released).", nil, nil)
	waitingDesc = prometheus.NewDesc("e4c2_commands_waiting_unseen",
		"Queued commands of devices never seen and not released: held in the C2's log until a sighting or a release.", nil, nil)
)

// fleetCollector reports the fleet summary: one walk of the key state per
// scrape for the three series, not one per series.
type fleetCollector struct{ svc *c2.Service }

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- fleetDesc
	ch <- releasedDesc
	ch <- waitingDesc
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.svc.FleetSummary()
	ch <- prometheus.MustNewConstMetric(fleetDesc, prometheus.GaugeValue, float64(f.InSync), "in_sync")
	ch <- prometheus.MustNewConstMetric(fleetDesc, prometheus.GaugeValue, float64(f.Lagging), "lagging")
	ch <- prometheus.MustNewConstMetric(fleetDesc, prometheus.GaugeValue, float64(f.NeverSeen), "never_seen")
	ch <- prometheus.MustNewConstMetric(releasedDesc, prometheus.GaugeValue, float64(f.Released))
	ch <- prometheus.MustNewConstMetric(waitingDesc, prometheus.GaugeValue, float64(f.Waiting))
}

// The mqtt.Metrics interface.
func (m *metrics) Published()       { m.published.Inc() }
func (m *metrics) Delivered()       { m.delivered.Inc() }
func (m *metrics) Retried()         { m.retries.Inc() }
func (m *metrics) Failed()          { m.failures.Inc() }
func (m *metrics) Unavailable()     { m.unavail.Inc() }
func (m *metrics) QueueDepth(n int) { m.inWorker.Set(float64(n)) }
func (m *metrics) InFlight(n int)   { m.inFlight.Set(float64(n)) }

// timedStore measures the latency of the store calls the service makes.
type timedStore struct {
	eventstore.Store
	m *metrics
}

func (s timedStore) Append(ctx context.Context, stream string, expected int64, evs ...eventstore.EventData) (uint64, error) {
	start := time.Now()
	v, err := s.Store.Append(ctx, stream, expected, evs...)
	s.m.storeOps.WithLabelValues("append").Observe(time.Since(start).Seconds())
	outcome := "ok"
	switch {
	case err == nil:
	case isConflict(err):
		outcome = "conflict"
	default:
		outcome = "error"
	}
	s.m.operations.WithLabelValues(outcome).Inc()
	return v, err
}

func (s timedStore) ReadStream(ctx context.Context, stream string, from uint64) ([]eventstore.Record, error) {
	start := time.Now()
	recs, err := s.Store.ReadStream(ctx, stream, from)
	s.m.storeOps.WithLabelValues("read_stream").Observe(time.Since(start).Seconds())
	return recs, err
}

func (s timedStore) ReadAll(ctx context.Context, from uint64, limit int) ([]eventstore.Record, error) {
	start := time.Now()
	recs, err := s.Store.ReadAll(ctx, from, limit)
	s.m.storeOps.WithLabelValues("read_all").Observe(time.Since(start).Seconds())
	return recs, err
}
