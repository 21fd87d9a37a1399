package server

import (
	"context"
	"errors"
	"fmt"
	nethttp "net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/e4c2/e4c2/internal/lease"
	"github.com/e4c2/e4c2/transport/mqtt"
)

// Duties held through leases when several instances share the log.
const (
	// DutyDelivery is the lease of the delivery worker: one lease for
	// every device (one instance delivers to the whole fleet; the others
	// are standbys).
	DutyDelivery = "delivery"
	// DutySchedules is the lease of the automation scheduler (rules with
	// an every/cron trigger). Event rules run on every instance: their
	// fires are claimed on the rule's stream, so each fires once.
	DutySchedules = "schedules"
)

// scheduleTick is how often the schedules lease holder evaluates the
// scheduled rules (the engine's own default).
const scheduleTick = time.Second

// haState is the lease machinery of an instance on a shared store; nil on
// the embedded store (one process holds every duty).
type haState struct {
	instance  string
	delivery  *lease.Lease
	schedules *lease.Lease
	worker    atomic.Pointer[mqtt.Worker] // the current term's worker
	stop      context.CancelFunc
	done      chan struct{} // both lease loops returned (leases released)
}

// instanceID is the configured instance id or the host name with a
// random suffix.
func instanceID(configured string) string {
	if configured != "" {
		return configured
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "e4c2"
	}
	return h + "-" + randomHex(3)
}

// newHA builds the two leases of an instance on a shared store; nil on the
// embedded store and in read-only mode (no duty runs).
func (s *Server) newHA() (*haState, error) {
	if !s.cfg.SharedStore() || s.cfg.ReadOnly {
		return nil, nil
	}
	ha := &haState{instance: instanceID(s.cfg.InstanceID)}
	if s.cfg.Broker == "" {
		// Only the delivery lease holder delivers, through its own
		// embedded broker: devices connected to another instance's
		// broker would wait until that instance holds the lease.
		s.log.Warn("a shared store with the embedded broker: run several instances with an external broker (--broker), see docs/high-availability.md", "instance", ha.instance)
	}
	for _, l := range []struct {
		duty string
		dst  **lease.Lease
	}{{DutyDelivery, &ha.delivery}, {DutySchedules, &ha.schedules}} {
		le, err := lease.New(lease.Config{Store: s.store, Duty: l.duty, Instance: ha.instance,
			Duration: s.cfg.LeaseDuration.Duration, Logger: s.log.With("component", "lease")})
		if err != nil {
			return nil, fmt.Errorf("lease %s: %w", l.duty, err)
		}
		*l.dst = le
	}
	s.metrics.reg.MustRegister(&leaseCollector{leases: []*lease.Lease{ha.delivery, ha.schedules}})
	return ha, nil
}

// startHA runs both lease loops until closeAll stops them: the delivery
// worker runs only in the terms this instance holds the delivery lease
// (a new worker per term, whose first fetch is the reconciler waking up on
// everything not yet delivered), the scheduler only in the terms it holds
// the schedules lease.
func (s *Server) startHA(ctx context.Context) {
	ha := s.ha
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ha.stop = cancel
	ha.done = make(chan struct{})
	loops := make(chan struct{}, 2)
	go func() { _ = ha.delivery.Run(runCtx, s.deliverDuty); loops <- struct{}{} }()
	go func() { _ = ha.schedules.Run(runCtx, s.scheduleDuty); loops <- struct{}{} }()
	go func() { <-loops; <-loops; close(ha.done) }()
}

// deliverDuty runs one delivery worker for one term of the delivery lease:
// cancelling ctx (the lease is no longer provably held) stops it at once,
// abandoning its publishes in flight; the next holder sends them again
// (at least once: the commands are idempotent on the devices).
func (s *Server) deliverDuty(ctx context.Context) {
	w := s.newWorker()
	if s.presence != nil {
		s.presence.setWorker(w)
	}
	s.ha.worker.Store(w)
	defer s.ha.worker.CompareAndSwap(w, nil)
	s.log.Info("delivering: this instance holds the delivery lease", "instance", s.ha.instance)
	if err := w.Run(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("delivery worker stopped", "err", err)
	}
}

// scheduleDuty evaluates the scheduled rules every second for one term of
// the schedules lease. A fire is still claimed on the rule's stream, so a
// tick that overlaps with the next holder's fires once.
func (s *Server) scheduleDuty(ctx context.Context) {
	t := time.NewTicker(scheduleTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.rules.Tick(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("automation: schedule tick", "err", err)
			}
		}
	}
}

// stopHA drains the current delivery worker within ctx, then stops both
// lease loops, which release their leases so a standby takes over at once.
func (s *Server) stopHA(ctx context.Context) error {
	ha := s.ha
	if ha == nil || ha.stop == nil {
		return nil
	}
	var errs []error
	if w := ha.worker.Load(); w != nil {
		if err := w.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("delivery shutdown: %w", err))
		}
	}
	ha.stop()
	select {
	case <-ha.done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("lease shutdown: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}

// haErr returns why this instance is not ready as far as its leases go: a
// lease it held and can no longer prove it holds (lost) stops its duty and
// fails /readyz until it is renewed or a standby took over.
func (s *Server) haErr() error {
	if s.ha == nil {
		return nil
	}
	var errs []error
	for _, l := range []*lease.Lease{s.ha.delivery, s.ha.schedules} {
		if st := l.Status(); st.State == lease.Lost {
			errs = append(errs, fmt.Errorf("lease %s lost (term %d): its duty is stopped until it is renewed or another instance takes over", st.Duty, st.Term))
		}
	}
	return errors.Join(errs...)
}

// LeaseStatus returns the leases as this instance knows them (nil on the
// embedded store, where one process holds every duty).
func (s *Server) LeaseStatus() []lease.Status {
	if s.ha == nil {
		return nil
	}
	return []lease.Status{s.ha.delivery.Status(), s.ha.schedules.Status()}
}

var (
	leaseStateDesc = prometheus.NewDesc("e4c2_lease_state",
		"1 for this instance's state in each duty's lease (holder, standby, lost), 0 for the others.",
		[]string{"duty", "state"}, nil)
	leaseTermDesc = prometheus.NewDesc("e4c2_lease_term",
		"Newest term of each duty's lease this instance has seen (one more at every change of holder).",
		[]string{"duty"}, nil)
	leaseAcquiredDesc = prometheus.NewDesc("e4c2_lease_acquisitions_total",
		"Times this instance acquired each duty's lease.", []string{"duty"}, nil)
)

// leaseCollector reports the leases at each scrape.
type leaseCollector struct{ leases []*lease.Lease }

func (c *leaseCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- leaseStateDesc
	ch <- leaseTermDesc
	ch <- leaseAcquiredDesc
}

func (c *leaseCollector) Collect(ch chan<- prometheus.Metric) {
	for _, l := range c.leases {
		st := l.Status()
		for _, s := range []lease.State{lease.Holder, lease.Standby, lease.Lost} {
			v := 0.0
			if st.State == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(leaseStateDesc, prometheus.GaugeValue, v, st.Duty, s.String())
		}
		ch <- prometheus.MustNewConstMetric(leaseTermDesc, prometheus.GaugeValue, float64(st.Term), st.Duty)
		ch <- prometheus.MustNewConstMetric(leaseAcquiredDesc, prometheus.CounterValue, float64(st.Acquisitions), st.Duty)
	}
}

// LeasesHeader is set on /readyz answers of an instance on a shared store:
// each duty's lease as this instance sees it, e.g.
// "delivery=holder(c2-a); schedules=standby(c2-b)" (the state of this
// instance, then the holder it knows of).
const LeasesHeader = "X-E4C2-Leases"

// leaseHeaderHandler adds LeasesHeader to /readyz.
func (s *Server) leaseHeaderHandler(next nethttp.Handler) nethttp.Handler {
	if s.ha == nil {
		return next
	}
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if r.URL.Path == "/readyz" {
			var parts []string
			for _, st := range s.LeaseStatus() {
				holder, _, _ := strings.Cut(st.Holder, "/")
				parts = append(parts, fmt.Sprintf("%s=%s(%s)", st.Duty, st.State, holder))
			}
			w.Header().Set(LeasesHeader, strings.Join(parts, "; "))
		}
		next.ServeHTTP(w, r)
	})
}
