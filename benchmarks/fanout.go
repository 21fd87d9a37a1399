package benchmarks

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/server"
	"github.com/e4c2/e4c2/suites"
	"github.com/e4c2/e4c2/suites/core"
)

// FanoutOptions configure one end-to-end fan-out measurement.
type FanoutOptions struct {
	Devices   int    // connected devices linked to the topic
	Broker    string // "embedded" or "mosquitto"
	Suite     string // default "standard"
	Mode      string // default "sk"
	Rotations int    // timed rotations (default 1)
	// Window overrides the delivery window of unconfirmed publishes
	// (config.DeliveryWindow; 0: the per-broker default).
	Window int
	// Profile, if set, receives a CPU profile of the C2 process covering
	// the timed rotations only (not the setup).
	Profile io.Writer
	Dir     string // parent of the temporary data directory (default os.TempDir)
	Farm    FarmCommand
	// Stage reports progress: a stage name, done and total (total 0: no count).
	Stage func(stage string, done, total int)

	// For tests: how long to wait for the devices (0: 2 min + 10 ms per
	// device), and a change to the C2 key digest the devices must match.
	wait      time.Duration
	keyDigest func([]byte) []byte
}

// FanoutResult is what a fan-out run measured.
type FanoutResult struct {
	Devices int
	Broker  string
	Setup   time.Duration // registering, connecting and the first attach
	// AllHold is, per rotation, the time from the rotation request until
	// every device holds the key the C2 set for the new version (compared
	// by digest with the key exported from the C2's service).
	AllHold []time.Duration
	// Confirmed is, per rotation, the time until every device holds that
	// key and the C2 recorded every command as delivered (its queue is
	// empty again): "rotated and confirmed", the figure compared with the
	// broker's floor.
	Confirmed []time.Duration
	// Request is the latency of the rotation call itself (durable).
	Request []time.Duration
	// ApplyMS is the device library's total time in Unprotect during the
	// last rotation, summed over devices.
	ApplyMS float64
	// DeviceErrors counts messages a device could not open or apply. A
	// result with device errors is never returned without an error.
	DeviceErrors int64
}

// Spread is the median, minimum and maximum of repeated measurements: a
// single best run of a noisy machine says more about the noise than about
// the code.
type Spread struct {
	Median, Min, Max time.Duration
	N                int
}

// spreadOf summarizes ds (the median of an even count is the upper middle
// value, a measured run rather than an average of two).
func spreadOf(ds []time.Duration) Spread {
	if len(ds) == 0 {
		return Spread{}
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return Spread{Median: s[len(s)/2], Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// String prints the spread in milliseconds.
func (s Spread) String() string {
	return fmt.Sprintf("median %.1f ms (min %.1f, max %.1f, n=%d)", ms(s.Median), ms(s.Min), ms(s.Max), s.N)
}

func (o *FanoutOptions) defaults() {
	if o.Suite == "" {
		o.Suite = "standard"
	}
	if o.Mode == "" {
		o.Mode = "sk"
	}
	if o.Rotations <= 0 {
		o.Rotations = 1
	}
	if o.Broker == "" {
		o.Broker = "embedded"
	}
	if o.Stage == nil {
		o.Stage = func(string, int, int) {}
	}
}

// c2Server is a whole e4c2 (server.Start) in a temporary directory, with
// the broker of its kind.
type c2Server struct {
	srv    *server.Server
	mosq   *mosquitto
	dir    string
	broker string // host:port devices connect to
}

func startC2Server(ctx context.Context, parent, broker, suite, mode string, window int) (*c2Server, error) {
	dir, err := os.MkdirTemp(parent, "e4c2-bench-c2-")
	if err != nil {
		return nil, err
	}
	s := &c2Server{dir: dir}
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Suite, cfg.Mode = suite, mode
	cfg.HTTPListen = "127.0.0.1:0"
	cfg.MQTTListen = "127.0.0.1:0"
	cfg.DeliveryWindow = window
	switch broker {
	case "embedded":
	case "mosquitto":
		// A larger C2 window needs a broker that lets that many QoS 2
		// publishes be in flight (mosquitto drops a publisher past it).
		inflight := 0
		if window > 16 {
			inflight = window + 4
		}
		m, err := startMosquitto(dir, inflight)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s.mosq = m
		cfg.Broker = "tcp://" + m.addr
		// The farm's devices send no acks and the C2 cannot see them in
		// mosquitto: deliver as to a fleet of reference devices.
		cfg.DeliverUnseen = true
	default:
		os.RemoveAll(dir)
		return nil, fmt.Errorf("unknown broker %q (embedded or mosquitto)", broker)
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	s.srv, err = server.Start(ctx, cfg, server.Options{Out: io.Discard, Logger: logger})
	if err != nil {
		s.close()
		return nil, fmt.Errorf("start c2: %w", err)
	}
	s.broker = strings.TrimPrefix(s.srv.MQTTAddr(), "tcp://")
	return s, nil
}

func (s *c2Server) close() {
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = s.srv.Shutdown(ctx)
		cancel()
	}
	if s.mosq != nil {
		s.mosq.stop()
	}
	os.RemoveAll(s.dir)
}

// makeDevices generates n device identities: the registered key (SK key or
// PK public key) and the device side key.
func makeDevices(s core.Suite, mode core.Mode, prefix string, n int) (names []string, registered [][]byte, devs []farmDevice, err error) {
	for i := range n {
		name := fmt.Sprintf("%s-%d", prefix, i)
		var reg, key []byte
		if mode == core.SymKey {
			if key, err = s.GenerateKey(); err != nil {
				return nil, nil, nil, err
			}
			reg = key
		} else {
			id, err := s.(core.PKSuite).GenerateIdentity()
			if err != nil {
				return nil, nil, nil, err
			}
			key, reg = id.Bytes(), id.PublicKey()
		}
		names = append(names, name)
		registered = append(registered, reg)
		devs = append(devs, farmDevice{Name: name, Key: key})
	}
	return names, registered, devs, nil
}

// waitPending waits until the C2's delivery queue is empty.
func waitPending(ctx context.Context, s *c2Server, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	svc := s.srv.Service()
	for svc.PendingCount() > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d commands still queued after %v", svc.PendingCount(), timeout)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// Fanout runs a whole C2 (server.Start: store, service, delivery worker,
// broker), registers and connects o.Devices device-library clients (in a
// device farm process), links them all to one topic, and then times topic
// rotations until every device holds the new key.
func Fanout(ctx context.Context, o FanoutOptions) (res FanoutResult, err error) {
	o.defaults()
	res = FanoutResult{Devices: o.Devices, Broker: o.Broker}
	if o.Farm == nil {
		return res, fmt.Errorf("fanout: no device farm command")
	}
	mode, err := suites.ParseMode(o.Mode)
	if err != nil {
		return res, err
	}
	t0 := time.Now()
	o.Stage("starting the C2 ("+o.Broker+" broker)", 0, 0)
	s, err := startC2Server(ctx, o.Dir, o.Broker, o.Suite, o.Mode, o.Window)
	if err != nil {
		return res, err
	}
	defer s.close()
	svc := s.srv.Service()
	names, reg, devs, err := makeDevices(svc.Suite(), mode, "dev", o.Devices)
	if err != nil {
		return res, err
	}
	var done atomic.Int64
	o.Stage("registering devices", 0, o.Devices)
	if err := registerClients(ctx, svc, names, reg, 64, func() { o.Stage("registering devices", int(done.Add(1)), o.Devices) }); err != nil {
		return res, err
	}
	const topic = "bench/fanout"
	if _, err := svc.NewTopic(ctx, origin, topic); err != nil {
		return res, err
	}
	spec := farmSpec{Broker: s.broker, Suite: o.Suite, Mode: o.Mode, Topic: topic, Devices: devs}
	if mode == core.PubKey {
		spec.C2Pub = svc.C2().PublicKey
	}
	o.Stage("connecting devices", 0, 0)
	f, err := startFarm(o.Farm, spec, 5*time.Minute)
	if err != nil {
		return res, err
	}
	defer f.close()
	run := &fanoutRun{o: &o, s: s, svc: svc, f: f, topic: topic}
	run.timeout = 2*time.Minute + time.Duration(o.Devices)*10*time.Millisecond
	if o.wait > 0 {
		run.timeout = o.wait
	}
	if err := run.firstDelivery(ctx, names); err != nil {
		return res, err
	}
	res.Setup = time.Since(t0)

	if o.Profile != nil {
		if err := pprof.StartCPUProfile(o.Profile); err != nil {
			return res, err
		}
		defer pprof.StopCPUProfile()
	}
	for r := range o.Rotations {
		o.Stage("rotation", r, o.Rotations)
		if err := run.rotate(ctx, r, &res); err != nil {
			return res, err
		}
	}
	o.Stage("rotation", o.Rotations, o.Rotations)
	return res, nil
}

// fanoutRun is a fan-out run once its C2 and device farm are up.
type fanoutRun struct {
	o       *FanoutOptions
	s       *c2Server
	svc     *c2.Service
	f       *farm
	topic   string
	timeout time.Duration // for the devices and the delivery queue
}

// firstDelivery links every device to the topic and waits until each
// holds the topic key and the C2's queue is empty.
func (run *fanoutRun) firstDelivery(ctx context.Context, names []string) error {
	o, f := run.o, run.f
	if err := f.arm(false); err != nil {
		return err
	}
	attached := 0
	o.Stage("linking devices to the topic", 0, o.Devices)
	if err := attachAll(ctx, run.svc, run.topic, names, 1000, func(n int) { attached += n; o.Stage("linking devices to the topic", attached, o.Devices) }); err != nil {
		return err
	}
	o.Stage("first key delivery", 0, 0)
	dg, err := c2KeyDigest(ctx, run.svc, run.topic)
	if err != nil {
		return fmt.Errorf("first delivery: %w", err)
	}
	if err := f.expect(dg); err != nil {
		return err
	}
	if ev, err := f.wait("done", run.timeout); err != nil {
		return fmt.Errorf("first delivery: %w", err)
	} else if ev.Errors > 0 {
		return fmt.Errorf("first delivery: %w: %d messages the devices could not apply", errFarm, ev.Errors)
	}
	return waitPending(ctx, run.s, run.timeout)
}

// rotate times rotation r into res: the request, until every device holds
// the new key, and until the C2 recorded every command as delivered.
func (run *fanoutRun) rotate(ctx context.Context, r int, res *FanoutResult) error {
	f := run.f
	if err := f.arm(false); err != nil {
		return err
	}
	start := time.Now()
	if _, err := run.svc.RotateTopic(ctx, origin, run.topic); err != nil {
		return err
	}
	res.Request = append(res.Request, time.Since(start))
	// The key the C2 set, exported in process: the farm counts a
	// device only when it holds exactly that key, not merely another
	// one than before. The export is an audited append of its own;
	// the devices' times do not wait for it (the farm stamps when
	// each device first held the key).
	dg, err := c2KeyDigest(ctx, run.svc, run.topic)
	if err != nil {
		return fmt.Errorf("rotation %d: %w", r, err)
	}
	if run.o.keyDigest != nil {
		dg = run.o.keyDigest(dg)
	}
	if err := f.expect(dg); err != nil {
		return err
	}
	ev, err := f.wait("done", run.timeout)
	if err != nil {
		return fmt.Errorf("rotation %d: %w", r, err)
	}
	res.ApplyMS, res.DeviceErrors = ev.ApplyMS, ev.Errors
	if ev.Errors > 0 {
		return fmt.Errorf("rotation %d: %w: %d messages the devices could not apply", r, errFarm, ev.Errors)
	}
	hold := time.Unix(0, ev.At).Sub(start)
	if err := waitPending(ctx, run.s, run.timeout); err != nil {
		return err
	}
	res.Confirmed = append(res.Confirmed, max(time.Since(start), hold))
	res.AllHold = append(res.AllHold, hold)
	return nil
}

// c2KeyDigest exports the topic's current key from the service and returns
// its keyDigest; the key itself is cleared at once and never printed. The
// key version is read before and after the export so that a concurrent
// rotation cannot pass one version's key off as another's.
func c2KeyDigest(ctx context.Context, svc *c2.Service, topic string) ([]byte, error) {
	before, err := svc.Topic(topic)
	if err != nil {
		return nil, fmt.Errorf("topic before export: %w", err)
	}
	key, err := svc.ExportTopicKey(ctx, origin, topic)
	if err != nil {
		return nil, fmt.Errorf("export the C2's topic key: %w", err)
	}
	defer clear(key)
	after, err := svc.Topic(topic)
	if err != nil {
		return nil, fmt.Errorf("topic after export: %w", err)
	}
	if before.KeyVersion != after.KeyVersion {
		return nil, fmt.Errorf("topic key rotated during the export (version %d -> %d)", before.KeyVersion, after.KeyVersion)
	}
	return keyDigest(key), nil
}
