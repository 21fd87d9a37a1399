package server

import (
	"context"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/monitor"
	"github.com/e4c2/e4c2/transport/mqtt/broker"
)

// newMonitor builds the traffic monitor when the configuration enables it
// (nil otherwise). It starts with startMonitor, once the broker runs.
func (s *Server) newMonitor() error {
	mc := s.cfg.Monitor
	if !mc.Enabled || s.cfg.ReadOnly {
		return nil
	}
	m, err := monitor.New(monitor.Config{
		Service:        s.svc,
		QueueSize:      mc.QueueSize,
		Workers:        mc.Workers,
		FindingWindow:  mc.Window.Duration,
		RateBucket:     mc.RateBucket.Duration,
		ReplayCapacity: mc.ReplayCapacity,
		Clock:          s.clock,
		Logger:         s.log.With("component", "monitor"),
	})
	if err != nil {
		return err
	}
	s.monitor = m
	s.metrics.reg.MustRegister(monitor.NewCollector(m))
	return nil
}

// startMonitor runs the monitor until the server stops.
func (s *Server) startMonitor(ctx context.Context) {
	if s.monitor == nil {
		return
	}
	s.monitorDone = make(chan struct{})
	go func() {
		defer close(s.monitorDone)
		_ = s.monitor.Run(ctx)
	}()
}

// stopMonitor waits for the monitor to record its last findings (the
// background context is cancelled by then).
func (s *Server) stopMonitor(ctx context.Context) {
	if s.monitorDone == nil {
		return
	}
	select {
	case <-s.monitorDone:
	case <-ctx.Done():
	}
}

// Monitor returns the traffic monitor, nil when it is off (tests).
func (s *Server) Monitor() *monitor.Monitor { return s.monitor }

// brokerTap feeds the monitor from the embedded broker.
type brokerTap struct{ m *monitor.Monitor }

var _ broker.PublishTap = brokerTap{}

func (t brokerTap) Published(device [16]byte, isDevice bool, topic string, payload []byte) {
	t.m.Offer(monitor.Message{Topic: topic, Payload: payload, Client: domain.ID(device), HasClient: isDevice})
}

// tap is the embedded broker's publish tap: the monitor, or nil.
func (s *Server) tap() broker.PublishTap {
	if s.monitor == nil {
		return nil
	}
	return brokerTap{s.monitor}
}
