package server

import (
	"context"
	"sort"
	"time"

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

// startMonitor runs the monitor until the server stops, and with an
// external broker its shared subscriptions.
func (s *Server) startMonitor(ctx context.Context) {
	if s.monitor == nil {
		return
	}
	s.monitorDone = make(chan struct{})
	go func() {
		defer close(s.monitorDone)
		_ = s.monitor.Run(ctx)
	}()
	if s.paho != nil {
		go s.subscribeMonitor(ctx, time.Second)
	}
}

// DefaultMonitorGroup is the shared-subscription group of the monitor.
const DefaultMonitorGroup = "e4c2-monitor"

// subscribeMonitor subscribes the server's monitor to the managed topics
// on the external broker (see subscribeShared).
func (s *Server) subscribeMonitor(ctx context.Context, poll time.Duration) {
	subscribeShared(ctx, s.paho, s.monitor, s.svc.TopicNames, s.cfg.Monitor.SharedGroup, poll)
}

// subscriber is the part of mqtt.Paho the monitor's subscriptions use.
type subscriber interface {
	Subscribe(filter string, handler func(topic string, payload []byte))
}

// subscribeShared subscribes m to every topic of topics() with a shared
// subscription ($share/<group>/<topic>, group default DefaultMonitorGroup):
// the broker hands each message to one member of the group, so several C2
// instances split the traffic (each records its own share of the
// findings). New topics are picked up within one poll period; the
// subscriptions are renewed after every reconnection (Paho.Subscribe).
// The C2's broker user must be allowed to read the topics (the generated
// mosquitto ACL gives it readwrite on #); devices keep their own ACL.
func subscribeShared(ctx context.Context, sub subscriber, m *monitor.Monitor, topics func() []string, group string, poll time.Duration) {
	if group == "" {
		group = DefaultMonitorGroup
	}
	handler := func(topic string, payload []byte) {
		m.Offer(monitor.Message{Topic: topic, Payload: payload})
	}
	subscribed := map[string]bool{}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		names := topics()
		sort.Strings(names) // subscribed in a stable order
		for _, topic := range names {
			if !subscribed[topic] {
				sub.Subscribe("$share/"+group+"/"+topic, handler)
				subscribed[topic] = true
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
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
