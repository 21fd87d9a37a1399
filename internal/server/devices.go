package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/eventcodec"
	"github.com/e4c2/e4c2/transport/mqtt"
	"github.com/e4c2/e4c2/transport/mqtt/broker"
)

// deviceAuthority answers the embedded broker's questions about devices from
// the C2's key state: a device connects with the credential of its current
// identity key (or, until it confirms a rotation, its previous one), reads
// its control topic and the topics it is attached to, and publishes only
// where its role allows.
type deviceAuthority struct {
	svc   *c2.Service
	clock func() time.Time
}

var _ broker.Authority = deviceAuthority{}

func (a deviceAuthority) Authenticate(username string, password []byte) ([16]byte, bool) {
	id, ok := a.svc.VerifyDeviceCredential(username, password, a.clock())
	return [16]byte(id), ok
}

func (a deviceAuthority) MaySubscribe(id [16]byte, topic string) bool {
	return a.svc.MaySubscribe(domain.ID(id), topic)
}

func (a deviceAuthority) MayPublish(id [16]byte, topic string) bool {
	return a.svc.MayPublish(domain.ID(id), topic)
}

// presence turns the broker's reports into work: a device that comes online
// wakes the delivery worker (its waiting commands go out now, protected
// now) and is recorded seen (the first time, as an event). The broker calls
// from its connection goroutines, so nothing here blocks: sightings are
// collected in a set and recorded by one goroutine.
type presence struct {
	svc    *c2.Service
	log    *slog.Logger
	worker atomic.Pointer[mqtt.Worker]

	mu     sync.Mutex
	seen   map[[16]byte]bool // id -> session present, waiting to be recorded
	signal chan struct{}
}

var _ broker.Observer = (*presence)(nil)

func newPresence(svc *c2.Service, log *slog.Logger) *presence {
	return &presence{svc: svc, log: log, seen: map[[16]byte]bool{}, signal: make(chan struct{}, 1)}
}

func (p *presence) DeviceOnline(id [16]byte, sessionPresent bool) {
	if w := p.worker.Load(); w != nil {
		w.Wake(id)
	}
	p.mu.Lock()
	p.seen[id] = sessionPresent
	p.mu.Unlock()
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

// DeviceOffline needs no work: the worker learns it from Deliver (ErrOffline).
func (p *presence) DeviceOffline([16]byte) {}

// run records sightings until ctx is done.
func (p *presence) run(ctx context.Context) {
	origin := c2.Origin{Actor: "system:broker"}
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.signal:
		}
		p.mu.Lock()
		batch := p.seen
		p.seen = map[[16]byte]bool{}
		p.mu.Unlock()
		for id, sp := range batch {
			if err := p.svc.RecordSeen(ctx, origin, domain.ID(id), sp); err != nil && ctx.Err() == nil {
				p.log.Warn("recording a device sighting failed", "client", domain.ID(id).String(), "error", err)
			}
		}
	}
}

// setWorker connects the worker once it exists. Devices that connected
// while the C2 was starting need no wake: the worker's first fetch sees
// them online.
func (p *presence) setWorker(w *mqtt.Worker) { p.worker.Store(w) }

// resyncOnReconnect reconciles every device after the connection to an
// external broker came back: the C2 cannot see what a restarted broker lost
// (a kill -9 drops what it accepted since its last save, sessions included),
// so it sends again whatever no device has confirmed. Keys a device already
// holds change nothing on it.
func (s *Server) resyncOnReconnect(ctx context.Context) {
	origin := c2.Origin{Actor: "system:reconnect"}
	for {
		select {
		case <-ctx.Done():
			return
		case sessionPresent := <-s.paho.Reconnected():
			n, err := s.svc.ResyncAll(ctx, origin, false)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("resync after a broker reconnection failed", "error", err)
				}
				continue
			}
			s.log.Info("broker reconnected: devices resynced", "session_present", sessionPresent, "commands", n)
		}
	}
}

// DeviceOnline reports whether a device is connected to the embedded broker
// and subscribed to its control topic (always false with an external
// broker, which the C2 cannot see into).
func (s *Server) DeviceOnline(id domain.ID) bool {
	return s.broker != nil && s.broker.Online([16]byte(id))
}

// wakeOnRelease wakes the delivery worker for every device released or
// seen for the first time (device.released.v1 or device.seen.v1 appended at
// or after from, by this instance or another one sharing the log): the
// worker set its commands aside, and the gate (mqtt.Gate) lets them out
// once the read model has the event. Devices released or seen before need
// no wake: the worker's first fetch sees them.
func (s *Server) wakeOnRelease(ctx context.Context, from uint64) {
	for ctx.Err() == nil {
		err := s.svc.Subscribe(ctx, from, func(r eventstore.Record) error {
			from = r.Position + 1
			var id domain.ID
			switch t := domain.TypeOf(r.Type); t {
			case domain.TypeDeviceReleased, domain.TypeDeviceSeen:
				ev, err := eventcodec.DecodeType(t, r.Data)
				if err != nil {
					return fmt.Errorf("%s at %d: %w", r.Type, r.Position, err)
				}
				if e, ok := ev.(*domain.DeviceReleased); ok {
					id = e.Client
				} else {
					id = ev.(*domain.DeviceSeen).Client
				}
			default:
				return nil
			}
			if err := s.svc.WaitPosition(ctx, r.Position); err != nil {
				return err
			}
			s.worker.Wake([16]byte(id))
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("following device releases failed; retrying", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
