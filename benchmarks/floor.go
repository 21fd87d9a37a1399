package benchmarks

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/e4c2/e4c2/client/credential"
	"github.com/e4c2/e4c2/suites"
	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/transport/mqtt"
	"github.com/e4c2/e4c2/transport/mqtt/broker"
)

// FloorResult is the fan-out floor of a broker: the same broker alone
// delivering one QoS 2 message of a command's size to each of N connected
// devices' control topics, no C2 involved. The C2's fan-out can only be
// slower; its ratio to this floor is what the C2 adds.
type FloorResult struct {
	Devices int
	Broker  string
	Payload int // bytes per message: the size of the C2's SetTopicKey
	Window  int // concurrent publishes, the C2's delivery window for this broker
	// Rounds is, per round, the time from the first publish until every
	// device received its message.
	Rounds []time.Duration
}

// floorBroker is a broker started for a floor run and the way to publish
// into it as the C2 would: in process (embedded) or through paho (external).
type floorBroker struct {
	addr    string
	publish func(ctx context.Context, topic string, payload []byte) error
	drained func() bool // the broker finished the QoS 2 exchanges (embedded only)
	close   func()
}

// startFloorBroker starts the broker of kind with the configuration the
// C2 would give it: the embedded broker with its persistence file and, in
// SK mode, the device credentials it would check (PK passwords are signed
// per connection and cannot be listed in advance); mosquitto as the C2's
// fan-out starts it.
func startFloorBroker(ctx context.Context, dir, kind string, window int, users map[string]string) (*floorBroker, error) {
	switch kind {
	case "embedded":
		b, err := broker.New(broker.Config{
			Address:     "127.0.0.1:0",
			PersistPath: filepath.Join(dir, "broker.db"),
			Authority:   farmAuthority{sk: users},
			Logger:      slog.New(slog.NewJSONHandler(io.Discard, nil)),
		})
		if err != nil {
			return nil, err
		}
		if err := b.Start(ctx); err != nil {
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
		pub := mqtt.NewInProcess(b, window)
		return &floorBroker{addr: b.Addr(), publish: pub.Publish,
			drained: func() bool { return b.Inflight() == 0 },
			close:   func() { _ = b.Close() }}, nil
	case "mosquitto":
		inflight := 0
		if window > 16 {
			inflight = window + 4
		}
		m, err := startMosquitto(dir, inflight)
		if err != nil {
			return nil, err
		}
		p, err := mqtt.NewPaho(mqtt.PahoConfig{BrokerURL: "tcp://" + m.addr, MaxInflight: window})
		if err != nil {
			m.stop()
			return nil, err
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := p.WaitConnected(wctx); err != nil {
			_ = p.Close()
			m.stop()
			return nil, fmt.Errorf("floor publisher: %w", err)
		}
		return &floorBroker{addr: m.addr, publish: p.Publish, drained: func() bool { return true },
			close: func() { _ = p.Close(); m.stop() }}, nil
	}
	return nil, fmt.Errorf("unknown broker %q (embedded or mosquitto)", kind)
}

// commandSize is the length of the protected SetTopicKey the C2 sends one
// device on a rotation, in suite s and mode.
func commandSize(s core.Suite, mode core.Mode) (int, error) {
	key, err := s.GenerateKey()
	if err != nil {
		return 0, err
	}
	defer clear(key)
	cmd, err := core.EncodeSetTopicKey(key, s.HashTopic("bench/fanout"))
	if err != nil {
		return 0, err
	}
	if mode == core.SymKey {
		p, err := s.Protect(key, cmd, time.Now())
		return len(p), err
	}
	pk := s.(core.PKSuite)
	c2k, err := pk.GenerateC2Key()
	if err != nil {
		return 0, err
	}
	dev, err := pk.GenerateIdentity()
	if err != nil {
		return 0, err
	}
	p, err := pk.ProtectCommand(c2k, dev.PublicKey(), cmd, time.Now())
	return len(p), err
}

// windowFor is the C2's delivery window for a broker kind (o.Window if
// set): the floor publishes with the same concurrency.
func windowFor(kind string, window int) int {
	switch {
	case window > 0:
		return window
	case kind == "embedded":
		return mqtt.DefaultWindowEmbedded
	}
	return mqtt.DefaultWindowExternal
}

// Floor measures the fan-out floor of o.Broker with o.Devices devices, one
// round per o.Rotations: the broker alone (no C2, no store, no command
// building) publishes one random QoS 2 message of a command's size to each
// device's control topic, with the C2's window of concurrent publishes,
// timed until the device farm saw every device receive its message.
func Floor(ctx context.Context, o FanoutOptions) (res FloorResult, err error) {
	o.defaults()
	res = FloorResult{Devices: o.Devices, Broker: o.Broker, Window: windowFor(o.Broker, o.Window)}
	if o.Farm == nil {
		return res, fmt.Errorf("floor: no device farm command")
	}
	mode, err := suites.ParseMode(o.Mode)
	if err != nil {
		return res, err
	}
	suite, err := suites.ForMode(o.Suite, mode)
	if err != nil {
		return res, err
	}
	if res.Payload, err = commandSize(suite, mode); err != nil {
		return res, fmt.Errorf("command size: %w", err)
	}
	dir, err := os.MkdirTemp(o.Dir, "e4c2-bench-floor-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	names, _, devs, err := makeDevices(suite, mode, "floor", o.Devices)
	if err != nil {
		return res, err
	}
	topics := make([]string, len(names))
	var users map[string]string
	if mode == core.SymKey {
		users = make(map[string]string, len(names))
	}
	for i, n := range names {
		id := suite.ID(n)
		topics[i] = core.ControlTopic(id)
		if users != nil {
			users[credential.Username(id)] = credential.SKPassword(devs[i].Key, id)
		}
	}
	o.Stage("starting the "+o.Broker+" broker alone", 0, 0)
	b, err := startFloorBroker(ctx, dir, o.Broker, res.Window, users)
	if err != nil {
		return res, err
	}
	defer b.close()
	spec := farmSpec{Broker: b.addr, Suite: o.Suite, Mode: o.Mode, Topic: "bench/floor", Devices: devs}
	o.Stage("connecting devices (floor)", 0, 0)
	f, err := startFarm(o.Farm, spec, 5*time.Minute)
	if err != nil {
		return res, err
	}
	defer f.close()
	timeout := 2*time.Minute + time.Duration(o.Devices)*10*time.Millisecond
	payload := make([]byte, res.Payload)
	for r := range o.Rotations {
		o.Stage("floor round", r, o.Rotations)
		if _, err := rand.Read(payload); err != nil {
			return res, err
		}
		if err := f.arm(true); err != nil {
			return res, err
		}
		start := time.Now()
		if err := publishAll(ctx, b, topics, payload, res.Window); err != nil {
			return res, fmt.Errorf("floor round %d: %w", r, err)
		}
		ev, err := f.wait("done", timeout)
		if err != nil {
			return res, fmt.Errorf("floor round %d: %w", r, err)
		}
		res.Rounds = append(res.Rounds, time.Unix(0, ev.At).Sub(start))
		// The next round starts on an idle broker, as each rotation does.
		deadline := time.Now().Add(timeout)
		for !b.drained() {
			if time.Now().After(deadline) {
				return res, fmt.Errorf("floor round %d: broker still has QoS 2 exchanges in flight after %v", r, timeout)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	o.Stage("floor round", o.Rotations, o.Rotations)
	return res, nil
}

// publishAll publishes payload to every topic with window concurrent
// publishers, as the C2's delivery worker keeps window publishes open.
func publishAll(ctx context.Context, b *floorBroker, topics []string, payload []byte, window int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, window)
	for range window {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(topics) {
					return
				}
				if err := b.publish(ctx, topics[i], payload); err != nil {
					errs <- fmt.Errorf("publish: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// farmAuthority admits the farm's devices to the floor's embedded broker
// the way the C2's authority does: SK devices by their password (users:
// username -> SK password); without users (PK mode, whose passwords are
// signed per connection), any well-formed device id, unchecked. Devices may
// read and publish every non-control topic.
type farmAuthority struct{ sk map[string]string }

func (a farmAuthority) Authenticate(username string, password []byte) ([16]byte, bool) {
	id, ok := credential.ParseUsername(username)
	if !ok {
		return id, false
	}
	if a.sk == nil {
		return id, true
	}
	want, ok := a.sk[username]
	return id, ok && subtle.ConstantTimeCompare([]byte(want), password) == 1
}

func (farmAuthority) MaySubscribe([16]byte, string) bool { return true }
func (farmAuthority) MayPublish([16]byte, string) bool   { return true }
