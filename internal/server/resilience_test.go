package server

// Resilience tests of the whole C2: broker outages, a C2 restart with
// commands queued, the real binary's graceful shutdown, the embedded
// broker's control-topic ACL, and the health, readiness and metrics
// endpoints. They run real stores, real brokers (mochi in process, mosquitto
// as a child process) and real device-library clients. This file is in
// package server (not server_test) to reach the embedded broker and the
// publisher: stopping the embedded broker on its own is how a test holds
// commands pending in the C2 deterministically.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/client/e4mqtt"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/testbroker"
	"github.com/e4c2/e4c2/internal/testwait"
	"github.com/e4c2/e4c2/projections"
)

// resWait bounds the waits that are not polls (a channel receive, a
// process's exit) like testwait bounds the polls: generous, because the
// machine is shared and the MQTT clients reconnect with back-off (paho
// waits up to a few seconds between attempts).
const resWait = testwait.Timeout

var resOrigin = c2.Origin{Actor: "test:resilience"}

// lockedBuffer is a bytes.Buffer safe for concurrent writers (a logger, a
// child process's output) and readers (the test).
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func resConfig(dir, suite, mode, brokerURL string) config.Config {
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Suite, cfg.Mode = suite, mode
	cfg.HTTPListen = "127.0.0.1:0"
	cfg.MQTTListen = "127.0.0.1:0"
	cfg.Broker = brokerURL
	cfg.DeliverUnseen = brokerURL != "" // devices without acks (see startServer)
	return cfg
}

// startC2 starts a whole C2. Its JSON log is kept and shown if the test
// fails; it is shut down at the end of the test unless the test did.
func startC2(t *testing.T, cfg config.Config) *Server {
	t.Helper()
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := Start(context.Background(), cfg, Options{Out: io.Discard, Logger: logger})
	if err != nil {
		t.Fatalf("start the C2: %v", err)
	}
	t.Cleanup(func() {
		shutdownC2(t, srv)
		if t.Failed() {
			t.Logf("C2 log (%s):\n%s", cfg.DataDir, logs.String())
		}
	})
	return srv
}

func shutdownC2(t *testing.T, srv *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// waitFor polls cond until it holds (testwait.For). The
// devices' errors fail it at once.
func waitFor(t *testing.T, what string, cond func() bool, devs ...*rdev) {
	t.Helper()
	testwait.For(t, what, func() bool {
		for _, d := range devs {
			d.failOnErrors(t)
		}
		return cond()
	})
}

// opContext bounds the service calls of a test, so that a hung call fails
// the test with its error instead of running into go test's timeout.
func opContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*resWait)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T) func(c2.Result, error) {
	return func(_ c2.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// fleetDev is a device of the process tests' fleets (C2 kill -9, HA): its
// client, its connection and the errors its messages raised.
type fleetDev struct {
	name string
	c    *client.Client
	d    *e4mqtt.Device
	mu   sync.Mutex
	errs []error
}

// connectFleet connects every device of fleet to brokerURL at once
// (persistent sessions, errors of received messages recorded) and closes
// them when the test ends; a failed connection fails t.
func connectFleet(t *testing.T, brokerURL string, fleet []*fleetDev) {
	t.Helper()
	var wg sync.WaitGroup
	for _, f := range fleet {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := e4mqtt.Connect(context.Background(), f.c, e4mqtt.Config{BrokerURL: brokerURL,
				OnMessage: func(m e4mqtt.Message) {
					if m.Err != nil {
						f.mu.Lock()
						f.errs = append(f.errs, m.Err)
						f.mu.Unlock()
					}
				}})
			if err != nil {
				t.Error(err)
				return
			}
			f.d = d
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, f := range fleet {
			if f.d != nil {
				f.d.Close()
			}
		}
	})
}

// rdev is a device-library client that remembers, for the topics it
// tracks, every distinct key it held, in order: the key history shows
// whether rotations arrived in order and whether an old command came back.
type rdev struct {
	name  string
	c     *client.Client
	track []string

	mu       sync.Mutex
	d        *e4mqtt.Device
	commands int
	errs     []error
	history  map[string][][]byte
	onProbe  func() // called for each application message
	// onCommand is called after each command the device applied, with
	// r.mu held (a benchmark reads the device's own state there instead of
	// polling every device).
	onCommand func()
}

// registerDevice registers a device with the C2 (a fresh key, or identity
// in PK mode) and builds its client; it does not connect it.
func registerDevice(t testing.TB, svc *c2.Service, name string, track ...string) *rdev {
	t.Helper()
	c := RegisterTestDevice(t, opContext(t), svc, resOrigin, name, domain.RoleBoth, nil)
	return &rdev{name: name, c: c, track: track, history: map[string][][]byte{}}
}

// connect connects the device with a persistent session (CleanSession
// false): the broker keeps its subscription and queue while it is away.
func (r *rdev) connect(t testing.TB, brokerURL string) {
	t.Helper()
	r.connectWith(t, e4mqtt.Config{BrokerURL: brokerURL})
}

// connectWith is connect with the other connection settings of cfg (acks:
// what lets a C2 on an external broker confirm the device's keys).
func (r *rdev) connectWith(t testing.TB, cfg e4mqtt.Config) {
	t.Helper()
	cfg.OnMessage = r.onMessage
	d, err := e4mqtt.Connect(opContext(t), r.c, cfg)
	if err != nil {
		t.Fatalf("connect %s: %v", r.name, err)
	}
	r.mu.Lock()
	r.d = d
	r.mu.Unlock()
	t.Cleanup(d.Close)
}

// disconnect closes the connection; the session stays on the broker.
func (r *rdev) disconnect() {
	r.mu.Lock()
	d := r.d
	r.d = nil
	r.mu.Unlock()
	if d != nil {
		d.Close()
	}
}

func (r *rdev) onMessage(m e4mqtt.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case m.Err != nil:
		r.errs = append(r.errs, fmt.Errorf("%s: %w", m.Topic, m.Err))
	case !m.Command:
		if r.onProbe != nil {
			r.onProbe()
		}
	case m.Command:
		r.commands++
		for _, topic := range r.track {
			k := r.key(topic)
			h := r.history[topic]
			if k != nil && (len(h) == 0 || !bytes.Equal(h[len(h)-1], k)) {
				r.history[topic] = append(h, k)
			}
		}
		if r.onCommand != nil {
			r.onCommand()
		}
	}
}

// key is the device's current key for topic (nil: none).
func (r *rdev) key(topic string) []byte {
	tk, ok := r.c.State().Topics[hex.EncodeToString(r.c.Suite().HashTopic(topic))]
	if !ok {
		return nil
	}
	return tk.Key
}

func (r *rdev) failOnErrors(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	errs := slices.Clone(r.errs)
	r.mu.Unlock()
	if len(errs) != 0 {
		t.Fatalf("device %s: %v", r.name, errs)
	}
}

func (r *rdev) keyHistory(topic string) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.history[topic])
}

func (r *rdev) commandCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.commands
}

// holdsExactly reports whether the device holds exactly these topic keys.
func (r *rdev) holdsExactly(want map[string][]byte) bool {
	if len(r.c.State().Topics) != len(want) {
		return false
	}
	for topic, k := range want {
		if !bytes.Equal(r.key(topic), k) {
			return false
		}
	}
	return true
}

func exportKey(t testing.TB, svc *c2.Service, topic string) []byte {
	t.Helper()
	k, err := svc.ExportTopicKey(opContext(t), resOrigin, topic)
	if err != nil {
		t.Fatalf("export %s: %v", topic, err)
	}
	return k
}

func sameKeys(a, b [][]byte) bool {
	return slices.EqualFunc(a, b, func(x, y []byte) bool { return bytes.Equal(x, y) })
}

// outcomes returns the refs of the commands of dev recorded delivered and
// failed after log position after.
func outcomes(svc *c2.Service, dev domain.ID, after uint64) (delivered, failed []string) {
	for _, typ := range []string{"command.delivered.v1", "command.confirmed.v1", "command.failed.v1"} {
		cursor := after
		for {
			es, _ := svc.Audit(projections.AuditQuery{Client: &dev, Type: typ, After: cursor, Limit: 1000})
			for _, e := range es {
				ref, _, _ := strings.Cut(e.Detail, ":")
				if typ != "command.failed.v1" {
					delivered = append(delivered, ref)
				} else {
					failed = append(failed, e.Detail)
				}
				cursor = e.Position
			}
			if len(es) < 1000 {
				break
			}
		}
	}
	return delivered, failed
}

func clientID(t *testing.T, svc *c2.Service, name string) domain.ID {
	t.Helper()
	ci, err := svc.Client(c2.ByName(name))
	if err != nil {
		t.Fatal(err)
	}
	return ci.ID
}

// TestResilienceBrokerOutage stops an external mosquitto (with persistence,
// so the broker keeps the sessions and messages it confirmed), issues
// commands while it is down, starts it again on the same port and checks
// that none is recorded delivered before a broker confirmed it, that the
// queue drains with no failure, and that two devices end with exactly the
// C2's keys, received in order: one connected throughout (it reconnects by
// itself), one offline across the outage that comes back only after the C2
// drained its queue (it gets what the broker held for it before the outage
// and what the C2 sent after it).
func TestResilienceBrokerOutage(t *testing.T) {
	for _, cb := range []struct{ suite, mode string }{{"standard", "sk"}, {"standard", "pk"}} {
		t.Run(cb.suite+"-"+cb.mode, func(t *testing.T) { runBrokerOutage(t, cb.suite, cb.mode) })
	}
}

func runBrokerOutage(t *testing.T, suite, mode string) {
	ctx := opContext(t)
	m := testbroker.StartMosquittoPersistent(t, 0)
	srv := startC2(t, resConfig(t.TempDir(), suite, mode, m.URL()))
	svc := srv.Service()
	waitFor(t, "the C2 connects to mosquitto", srv.pub.Connected)

	topics := []string{"outage/t1", "outage/t2", "outage/t3", "outage/t4", "outage/t5"}
	dev := registerDevice(t, svc, "outage-dev", topics[0])
	sleeper := registerDevice(t, svc, "outage-sleeper", topics[0])
	devs := []*rdev{dev, sleeper}
	ids := []domain.ID{clientID(t, svc, dev.name), clientID(t, svc, sleeper.name)}
	dev.connect(t, m.URL())
	sleeper.connect(t, m.URL())
	sleeper.disconnect() // its session, with the subscription, stays on the broker
	start := svc.Position()

	// Before the outage, through the live broker: dev receives its
	// command, the broker holds the sleeper's.
	must(t)(svc.NewTopic(ctx, resOrigin, "outage/t0"))
	for _, d := range devs {
		must(t)(svc.NewTopicClient(ctx, resOrigin, c2.ByName(d.name), "outage/t0"))
	}
	want := map[string][]byte{"outage/t0": exportKey(t, svc, "outage/t0")}
	waitFor(t, "dev holds outage/t0", func() bool { return bytes.Equal(dev.key("outage/t0"), want["outage/t0"]) }, dev)
	waitFor(t, "the first commands are recorded delivered", func() bool { return svc.PendingCount() == 0 }, dev)

	m.Stop()
	waitFor(t, "the C2 sees the broker down", func() bool { return !srv.pub.Connected() })

	var t1History [][]byte
	for _, topic := range topics {
		must(t)(svc.NewTopic(ctx, resOrigin, topic))
		for _, d := range devs {
			must(t)(svc.NewTopicClient(ctx, resOrigin, c2.ByName(d.name), topic))
		}
	}
	t1History = append(t1History, exportKey(t, svc, topics[0]))
	for range 2 {
		must(t)(svc.RotateTopic(ctx, resOrigin, topics[0])) // rotation: one command per device
		t1History = append(t1History, exportKey(t, svc, topics[0]))
	}
	for _, topic := range topics {
		want[topic] = exportKey(t, svc, topic)
	}
	// No broker confirmed anything: all of it is still pending.
	perDevice := len(topics) + 2
	if n := svc.PendingCount(); n != len(devs)*perDevice {
		t.Fatalf("with the broker down, %d commands pending; want all %d issued", n, len(devs)*perDevice)
	}

	m.Start()
	waitFor(t, "the queue drains after the outage", func() bool { return svc.PendingCount() == 0 }, dev)
	waitFor(t, "dev holds exactly the C2's topic keys", func() bool { return dev.holdsExactly(want) }, dev)
	sleeper.connect(t, m.URL())
	waitFor(t, "the sleeper holds exactly the C2's topic keys", func() bool { return sleeper.holdsExactly(want) }, sleeper)
	for i, d := range devs {
		if !bytes.Equal(d.key(topics[0]), t1History[2]) {
			t.Fatalf("%s: the final key of outage/t1 is not the C2's current key", d.name)
		}
		if h := d.keyHistory(topics[0]); !sameKeys(h, t1History) {
			t.Fatalf("%s held %d successive keys of outage/t1, want the C2's %d in order (reordered or replayed commands)", d.name, len(h), len(t1History))
		}
		delivered, failed := outcomes(svc, ids[i], start)
		if len(failed) != 0 {
			t.Fatalf("%s: failed deliveries: %v", d.name, failed)
		}
		if len(delivered) != 1+perDevice {
			t.Fatalf("%s: %d commands recorded delivered, want %d", d.name, len(delivered), 1+perDevice)
		}
		d.failOnErrors(t)
	}
	t.Logf("%s-%s: %d commands per device issued during the outage, all delivered in order; the devices applied %d and %d commands",
		suite, mode, perDevice, dev.commandCount(), sleeper.commandCount())
}

// c2Snapshot is the part of the C2's state a restart must keep.
type c2Snapshot struct {
	clients  []clientView
	topics   []projections.TopicInfo
	pending  []string // refs of queued, unconfirmed commands
	position uint64
}

type clientView struct {
	ID         domain.ID
	Name       string
	Role       domain.Role
	KeyVersion uint64
	Topics     int
	Created    time.Time
}

func snapshotC2(t *testing.T, svc *c2.Service) c2Snapshot {
	t.Helper()
	var s c2Snapshot
	cs, _, err := svc.Clients("", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		s.clients = append(s.clients, clientView{c.ID, c.Name, c.Role, c.KeyVersion, c.Topics, c.Created.UTC()})
	}
	if s.topics, _, err = svc.Topics("", 1000); err != nil {
		t.Fatal(err)
	}
	for i := range s.topics {
		s.topics[i].Created, s.topics[i].Rotated = s.topics[i].Created.UTC(), s.topics[i].Rotated.UTC()
	}
	for _, q := range svc.PendingAfter(0, 100000) {
		s.pending = append(s.pending, q.Ref.String())
	}
	s.position = svc.Position()
	return s
}

// TestResilienceC2Restart restarts the C2 (embedded broker) on the same data
// directory with commands in both places they can wait for an offline
// device: held by the broker (confirmed, recorded delivered, kept in the
// device's persistent session) and queued in the C2 (unconfirmed, because
// the broker was down). After the restart the state is the same, every
// pending command is delivered exactly once, and the device, connecting
// only then, ends with the C2's keys, received in order.
func TestResilienceC2Restart(t *testing.T) {
	ctx := opContext(t)
	cfg := resConfig(t.TempDir(), "standard", "sk", "")
	srv1 := startC2(t, cfg)
	svc1 := srv1.Service()
	dev := registerDevice(t, svc1, "restart-dev", "restart/a1", "restart/b2")
	id := clientID(t, svc1, dev.name)
	// The device joins once and goes away. Its commands wait in the C2's
	// log from then on: the embedded broker hands a command only to an
	// online device, and counts it when the device's session took it.
	dev.connect(t, "tcp://"+srv1.MQTTAddr())
	dev.disconnect()
	waitFor(t, "the broker sees the device leave", func() bool { return !srv1.DeviceOnline(id) })

	want := map[string][]byte{}
	var a1History, b2History [][]byte

	// Phase A, the embedded broker up, the device away: queued in the C2.
	for _, topic := range []string{"restart/a1", "restart/a2", "restart/a3"} {
		must(t)(svc1.NewTopic(ctx, resOrigin, topic))
		must(t)(svc1.NewTopicClient(ctx, resOrigin, c2.ByName(dev.name), topic))
	}
	a1History = append(a1History, exportKey(t, svc1, "restart/a1"))
	must(t)(svc1.RotateTopic(ctx, resOrigin, "restart/a1"))
	a1History = append(a1History, exportKey(t, svc1, "restart/a1"))
	if n := svc1.PendingCount(); n != 4 {
		t.Fatalf("phase A: %d commands pending, want 4 (nothing may count as delivered to an absent device)", n)
	}
	if got, _ := outcomes(svc1, id, 0); len(got) != 0 {
		t.Fatalf("phase A: %d commands recorded delivered to an absent device", len(got))
	}

	// Phase B, the embedded broker stopped: the commands stay queued in
	// the C2.
	if err := srv1.broker.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the publisher sees the broker down", func() bool { return !srv1.pub.Connected() })
	for _, topic := range []string{"restart/b1", "restart/b2", "restart/b3"} {
		must(t)(svc1.NewTopic(ctx, resOrigin, topic))
		must(t)(svc1.NewTopicClient(ctx, resOrigin, c2.ByName(dev.name), topic))
	}
	must(t)(svc1.RotateTopic(ctx, resOrigin, "restart/a1"))
	a1History = append(a1History, exportKey(t, svc1, "restart/a1"))
	b2History = append(b2History, exportKey(t, svc1, "restart/b2"))
	const b2Rotations = 40
	for range b2Rotations {
		must(t)(svc1.RotateTopic(ctx, resOrigin, "restart/b2"))
		b2History = append(b2History, exportKey(t, svc1, "restart/b2"))
	}
	for _, topic := range []string{"restart/a1", "restart/a2", "restart/a3", "restart/b1", "restart/b2", "restart/b3"} {
		want[topic] = exportKey(t, svc1, topic)
	}
	const queuedInC2 = 4 + 3 + 1 + b2Rotations
	before := snapshotC2(t, svc1)
	if len(before.pending) != queuedInC2 {
		t.Fatalf("%d commands pending before the restart, want %d", len(before.pending), queuedInC2)
	}

	shutdownC2(t, srv1)
	if n := svc1.PendingCount(); n != queuedInC2 {
		t.Fatalf("after shutdown %d commands pending, want %d (a shutdown must not settle unconfirmed commands)", n, queuedInC2)
	}

	srv2 := startC2(t, cfg)
	svc2 := srv2.Service()
	after := snapshotC2(t, svc2)
	if !slices.Equal(after.clients, before.clients) {
		t.Fatalf("clients after the restart:\n%+v\nbefore:\n%+v", after.clients, before.clients)
	}
	if !slices.EqualFunc(after.topics, before.topics, func(a, b projections.TopicInfo) bool {
		return a.Hash == b.Hash && a.Name == b.Name && a.KeyVersion == b.KeyVersion && a.Members == b.Members &&
			a.Created.Equal(b.Created) && a.Rotated.Equal(b.Rotated)
	}) {
		t.Fatalf("topics after the restart:\n%+v\nbefore:\n%+v", after.topics, before.topics)
	}
	if after.position < before.position {
		t.Fatalf("log position %d after the restart, %d before", after.position, before.position)
	}
	// The worker may already be delivering: what is pending now is a
	// subset of what was, and nothing else.
	for _, ref := range after.pending {
		if !slices.Contains(before.pending, ref) {
			t.Fatalf("after the restart %s is pending but was not before", ref)
		}
	}

	// The device comes back only now: everything goes out, protected now,
	// in queue order, each confirmed by the device's session.
	dev.connect(t, "tcp://"+srv2.MQTTAddr())
	waitFor(t, "the restarted C2 drains the queue", func() bool { return svc2.PendingCount() == 0 }, dev)
	resent, failed := outcomes(svc2, id, before.position)
	if len(failed) != 0 {
		t.Fatalf("failed deliveries after the restart: %v", failed)
	}
	slices.Sort(resent)
	wantResent := slices.Sorted(slices.Values(before.pending))
	if !slices.Equal(resent, wantResent) {
		t.Fatalf("after the restart %d commands recorded delivered, want exactly the %d pending before", len(resent), len(wantResent))
	}
	if all, _ := outcomes(svc2, id, 0); len(all) != queuedInC2 {
		t.Fatalf("%d commands delivered in all, want %d", len(all), queuedInC2)
	}
	waitFor(t, "the device holds exactly the C2's keys", func() bool { return dev.holdsExactly(want) }, dev)
	if h := dev.keyHistory("restart/a1"); !sameKeys(h, a1History) {
		t.Fatalf("the device held %d successive keys of restart/a1, want the C2's %d in order", len(h), len(a1History))
	}
	if h := dev.keyHistory("restart/b2"); !sameKeys(h, b2History) {
		t.Fatalf("the device held %d successive keys of restart/b2, want the C2's %d in order", len(h), len(b2History))
	}
	dev.failOnErrors(t)
	t.Logf("%d commands queued in the C2 across the restart; the device applied %d", queuedInC2, dev.commandCount())
}

// httpDo sends a request to the API and returns the status and body.
func httpDo(t *testing.T, method, u, token string, body any) (int, []byte) {
	t.Helper()
	code, out, _ := haDo(t, method, u, token, body, 0)
	return code, out
}

// metricValue reads one unlabelled sample from /metrics.
func metricValue(t *testing.T, base, name string) float64 {
	t.Helper()
	status, body := httpDo(t, nethttp.MethodGet, base+"/metrics", "", nil)
	if status != nethttp.StatusOK {
		t.Fatalf("GET /metrics: %d %s", status, body)
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not in /metrics", name)
	return 0
}

// TestResilienceHealthReadiness checks the probes against an external
// broker that goes away and comes back: /healthz stays ok, /readyz follows
// the broker, and /metrics counts a delivery.
func TestResilienceHealthReadiness(t *testing.T) {
	ctx := opContext(t)
	m := testbroker.StartMosquitto(t, 0)
	srv := startC2(t, resConfig(t.TempDir(), "standard", "sk", m.URL()))
	svc := srv.Service()
	base := "http://" + srv.HTTPAddr()
	status := func(path string) int {
		s, _ := httpDo(t, nethttp.MethodGet, base+path, "", nil)
		return s
	}
	healthy := func() {
		t.Helper()
		s, body := httpDo(t, nethttp.MethodGet, base+"/healthz", "", nil)
		if s != nethttp.StatusOK || !strings.Contains(string(body), `"ok"`) {
			t.Fatalf("/healthz: %d %s", s, body)
		}
	}

	waitFor(t, "/readyz ready with the broker up", func() bool { return status("/readyz") == nethttp.StatusOK })
	healthy()

	dev := registerDevice(t, svc, "probe-dev")
	dev.connect(t, m.URL())
	before := metricValue(t, base, "e4c2_delivery_delivered_total")
	must(t)(svc.NewTopic(ctx, resOrigin, "probe/topic"))
	must(t)(svc.NewTopicClient(ctx, resOrigin, c2.ByName(dev.name), "probe/topic"))
	waitFor(t, "the device holds the topic key", func() bool { return dev.key("probe/topic") != nil }, dev)
	waitFor(t, "the delivery is recorded", func() bool { return svc.PendingCount() == 0 }, dev)
	waitFor(t, "e4c2_delivery_delivered_total counts the delivery", func() bool {
		return metricValue(t, base, "e4c2_delivery_delivered_total") >= before+1
	})
	if got := metricValue(t, base, "e4c2_delivery_delivered_total"); got != before+1 {
		t.Fatalf("e4c2_delivery_delivered_total went from %v to %v after one delivery", before, got)
	}
	if d := metricValue(t, base, "e4c2_delivery_queue_depth"); d != 0 {
		t.Fatalf("e4c2_delivery_queue_depth %v after the queue drained", d)
	}

	m.Stop()
	waitFor(t, "/readyz not ready with the broker down", func() bool { return status("/readyz") == nethttp.StatusServiceUnavailable })
	healthy()
	m.Start()
	waitFor(t, "/readyz ready again after the broker returns", func() bool { return status("/readyz") == nethttp.StatusOK })
	healthy()
}

// TestResilienceEmbeddedBrokerACL connects plain MQTT clients to the C2's
// embedded broker: one publishes forged commands on a device's control
// topic with every QoS, and neither that device nor an eavesdropper on
// e4/# receives them, while the C2's own command arrives.
func TestResilienceEmbeddedBrokerACL(t *testing.T) {
	ctx := opContext(t)
	srv := startC2(t, resConfig(t.TempDir(), "standard", "sk", ""))
	svc := srv.Service()
	url := "tcp://" + srv.MQTTAddr()
	victim := registerDevice(t, svc, "acl-victim")
	attacker := registerDevice(t, svc, "acl-attacker")
	must(t)(svc.NewTopic(ctx, resOrigin, "acl/probe"))
	must(t)(svc.NewTopicClient(ctx, resOrigin, c2.ByName(victim.name), "acl/probe"))
	must(t)(svc.NewTopicClient(ctx, resOrigin, c2.ByName(attacker.name), "acl/probe"))
	victim.connect(t, url)
	waitFor(t, "the victim holds the probe key", func() bool { return victim.key("acl/probe") != nil }, victim)
	control := victim.c.ControlTopic()

	// Nobody connects without a device credential (or the C2's).
	anon := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("acl-spy").
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second))
	if tok := anon.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
		anon.Disconnect(0)
		t.Fatal("an anonymous client connected to the embedded broker")
	}

	// A registered device forges commands on the victim's control topic
	// and on "e4" at every QoS; its probe on a shared topic, published
	// after them on the same connection, tells when the broker has
	// processed them. Had one been routed, the victim would have tried to
	// apply it (and failed: an error) before the probe.
	attacker.connect(t, url) // to get the probe topic's key
	waitFor(t, "the attacker holds the probe key", func() bool { return attacker.key("acl/probe") != nil }, attacker)
	attacker.disconnect()
	u, pw, err := attacker.c.MQTTCredential()
	if err != nil {
		t.Fatal(err)
	}
	ac := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("e4dev-" + u).
		SetUsername(u).SetPassword(pw).SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second))
	if tok := ac.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect the attacker device: %v", tok.Error())
	}
	t.Cleanup(func() { ac.Disconnect(100) })
	probes := make(chan struct{}, 8)
	if err := victim.d.Subscribe(ctx, "acl/probe"); err != nil {
		t.Fatal(err)
	}
	victim.mu.Lock()
	victim.onProbe = func() { probes <- struct{}{} }
	victim.mu.Unlock()
	for qos := byte(0); qos <= 2; qos++ {
		payload := []byte(fmt.Sprintf("forged command, qos %d", qos))
		ac.Publish(control, qos, false, payload).WaitTimeout(5 * time.Second)
		ac.Publish("e4", qos, false, payload).WaitTimeout(5 * time.Second)
		probe, err := attacker.c.ProtectMessage([]byte("probe"), "acl/probe")
		if err != nil {
			t.Fatal(err)
		}
		if tok := ac.Publish("acl/probe", 1, false, probe); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
			select {
			case <-probes:
			case <-time.After(resWait):
				t.Fatalf("the victim never received probe %d", qos)
			}
		}
	}

	// The C2's own command on the same topic goes through.
	must(t)(svc.NewTopic(ctx, resOrigin, "acl/topic"))
	must(t)(svc.NewTopicClient(ctx, resOrigin, c2.ByName(victim.name), "acl/topic"))
	waitFor(t, "the victim holds the topic key", func() bool { return victim.key("acl/topic") != nil }, victim)
	if n := victim.commandCount(); n != 2 {
		t.Fatalf("the victim applied %d commands, want the C2's 2", n)
	}
	victim.failOnErrors(t)
}

// buildE4c2 builds cmd/e4c2 into a temporary directory.
func buildE4c2(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "e4c2")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/e4c2/e4c2/cmd/e4c2")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is a running e4c2 binary.
type proc struct {
	cmd    *exec.Cmd
	stdout *lockedBuffer
	stderr *lockedBuffer
	lines  chan string // stdout lines
	done   chan struct{}
	err    error // Wait's, after done
}

func startProc(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	return startProcEnv(t, nil, bin, args...)
}

// startProcEnv is startProc with env (KEY=value) added to the child's
// environment: the HA test's NATS nodes are this test binary re-executed,
// told by an environment variable which node to be.
func startProcEnv(t *testing.T, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), stdout: &lockedBuffer{}, stderr: &lockedBuffer{},
		lines: make(chan string, 64), done: make(chan struct{})}
	p.cmd.Env = append(append(os.Environ(), "E4C2_TOKEN="), env...)
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.stdout.Write(append(sc.Bytes(), '\n'))
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		<-copied // Wait closes the pipe: read it all first
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("e4c2 %v\nstdout:\n%s\nstderr:\n%s", args, p.stdout.String(), p.stderr.String())
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("e4c2 did not exit within %v", within)
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("e4c2: %v", p.err)
	return -1
}

// adminToken reads the first admin token the server prints.
func (p *proc) adminToken(t *testing.T) string {
	t.Helper()
	deadline := time.After(resWait)
	announced := false
	for {
		select {
		case line := <-p.lines:
			if strings.HasPrefix(line, "admin API token") {
				announced = true
			} else if announced && strings.TrimSpace(line) != "" {
				return strings.TrimSpace(line)
			}
		case <-p.done:
			t.Fatal("e4c2 exited before printing the admin token")
		case <-deadline:
			t.Fatal("e4c2 printed no admin token")
		}
	}
}

func waitHealthy(t *testing.T, base string, p *proc) {
	t.Helper()
	waitFor(t, "the API answers /healthz", func() bool {
		select {
		case <-p.done:
			t.Fatal("e4c2 exited while starting")
		default:
		}
		s, _ := httpDo(t, nethttp.MethodGet, base+"/healthz", "", nil)
		return s == nethttp.StatusOK
	})
}

// stopProc sends SIGTERM and checks a clean exit with the JSON "e4c2
// stopped" log line.
func stopProc(t *testing.T, p *proc, timeout time.Duration) {
	t.Helper()
	sent := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, timeout+10*time.Second); code != 0 {
		t.Fatalf("e4c2 exited %d after SIGTERM, want 0", code)
	}
	if d := time.Since(sent); d > timeout {
		t.Fatalf("e4c2 took %v to stop, more than its shutdown timeout %v", d, timeout)
	}
	stopped := false
	for line := range strings.Lines(p.stderr.String()) {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var rec struct {
			Msg   string `json:"msg"`
			Level string `json:"level"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %v: %s", err, line)
		}
		if rec.Msg == "e4c2 stopped" && rec.Level == "INFO" {
			stopped = true
		}
	}
	if !stopped {
		t.Fatal(`no JSON "e4c2 stopped" line on stderr`)
	}
}

// TestResilienceBinaryGracefulShutdown runs the real e4c2 binary: first
// start prints an admin token, SIGTERM stops it cleanly, a restart keeps
// the topic and the token and prints no new token, and an invalid suite and
// mode combination is refused with one error line.
func TestResilienceBinaryGracefulShutdown(t *testing.T) {
	bin := buildE4c2(t)
	root := t.TempDir()
	data := filepath.Join(root, "data") // created by e4c2
	const shutdownTimeout = 10 * time.Second
	serve := func() (*proc, string) {
		httpAddr, mqttAddr := testbroker.FreeAddr(t), testbroker.FreeAddr(t)
		p := startProc(t, bin, "serve", "--data-dir", data, "--http-listen", httpAddr, "--mqtt-listen", mqttAddr,
			"--shutdown-timeout", shutdownTimeout.String())
		return p, "http://" + httpAddr
	}

	p, base := serve()
	token := p.adminToken(t)
	waitHealthy(t, base, p)
	const topic = "binary/graceful"
	if s, body := httpDo(t, nethttp.MethodPost, base+"/api/v1/topics", token, map[string]string{"topic": topic}); s != nethttp.StatusCreated {
		t.Fatalf("create topic: %d %s", s, body)
	}
	stopProc(t, p, shutdownTimeout)

	for path, want := range map[string]os.FileMode{data: 0o700, filepath.Join(data, "master.key"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %v, want %v", path, got, want)
		}
	}

	p2, base2 := serve()
	waitHealthy(t, base2, p2)
	s, body := httpDo(t, nethttp.MethodGet, base2+"/api/v1/topics/"+url.PathEscape(topic), token, nil)
	if s != nethttp.StatusOK || !strings.Contains(string(body), topic) {
		t.Fatalf("after a restart, GET the topic with the first token: %d %s", s, body)
	}
	stopProc(t, p2, shutdownTimeout)
	if strings.Contains(p2.stdout.String(), "token") {
		t.Fatalf("the restart printed a token again:\n%s", p2.stdout.String())
	}

	// pq has no SK mode: refused before anything is created.
	refused := filepath.Join(root, "refused")
	p3 := startProc(t, bin, "serve", "--data-dir", refused, "--suite", "pq", "--mode", "sk",
		"--http-listen", testbroker.FreeAddr(t), "--mqtt-listen", testbroker.FreeAddr(t))
	if code := p3.wait(t, resWait); code != 1 {
		t.Fatalf("--suite pq --mode sk exited %d, want 1", code)
	}
	var errLines []string
	for line := range strings.Lines(p3.stderr.String()) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "e4c2: error:"):
			errLines = append(errLines, line)
		case strings.HasPrefix(line, "e4c2: hint:"):
		default:
			t.Errorf("unexpected stderr line: %q", line)
		}
	}
	if len(errLines) != 1 || !strings.Contains(errLines[0], "pq") || !strings.Contains(errLines[0], "sk") {
		t.Fatalf("want one 'e4c2: error:' line naming pq and sk, got %q", errLines)
	}
	if _, err := os.Stat(refused); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused start created its data directory (stat: %v)", err)
	}
	if out := p3.stdout.String(); out != "" {
		t.Errorf("a refused start printed on stdout: %q", out)
	}
}
