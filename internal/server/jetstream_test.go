package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/server"
	"github.com/e4c2/e4c2/internal/testwait"
)

// startNATS runs an embedded nats-server with JetStream on port (0: any).
func startNATS(t *testing.T, dir string, port int) *natsserver.Server {
	t.Helper()
	if port == 0 {
		port = -1
	}
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, JetStream: true,
		StoreDir: dir, NoLog: true, NoSigs: true, JetStreamMaxMemory: 64 << 20, JetStreamMaxStore: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(20 * time.Second) {
		ns.Shutdown()
		t.Fatal("nats-server did not start")
	}
	return ns
}

// TestServeOnJetStream serves e4c2 from a JetStream log (--store nats://):
// writes land in the log, /readyz fails while NATS is down, and the server
// writes again once NATS is back.
func TestServeOnJetStream(t *testing.T) {
	natsDir := t.TempDir()
	ns := startNATS(t, natsDir, 0)
	port := ns.Addr().(*net.TCPAddr).Port
	t.Cleanup(func() { ns.Shutdown() })

	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTPListen, cfg.MQTTListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Store = ns.ClientURL() + "?stream=E2E&prefix=e2e"
	var out bytes.Buffer
	srv, err := server.Start(context.Background(), cfg, server.Options{Out: &out, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	token := strings.TrimSpace(lines[len(lines)-1])

	do := func(method, path string, body any) (int, string) {
		return apiRequest(t, srv.HTTPAddr(), token, method, path, body)
	}
	waitStatus := func(what, method, path string, body any, want int) {
		t.Helper()
		testwait.For(t, what, func() bool { st, _ := do(method, path, body); return st == want })
	}
	if st, b := do("POST", "/api/v1/topics", map[string]string{"topic": "js/one"}); st != nethttp.StatusCreated {
		t.Fatalf("create topic: %d %s", st, b)
	}
	waitStatus("ready on JetStream", "GET", "/readyz", nil, nethttp.StatusOK)

	ns.Shutdown()
	ns.WaitForShutdown()
	waitStatus("NATS down", "GET", "/readyz", nil, nethttp.StatusServiceUnavailable)

	ns = startNATS(t, natsDir, port)
	waitStatus("NATS back", "GET", "/readyz", nil, nethttp.StatusOK)
	waitStatus("write after NATS came back", "POST", "/api/v1/topics", map[string]string{"topic": "js/two"}, nethttp.StatusCreated)

	// The projections followed the log across the outage: the service's
	// position covers the second topic.
	var topics []string
	for _, r := range logRecords(t, srv.Service()) {
		if strings.HasPrefix(r.Type, "topic.created") {
			topics = append(topics, string(r.Data))
		}
	}
	if len(topics) != 2 || !strings.Contains(topics[0], "js/one") || !strings.Contains(topics[1], "js/two") {
		t.Fatalf("topic events in the log: %q", topics)
	}
}

// TestTwoInstancesOnJetStream runs two e4c2 instances on one JetStream
// log (same master key, data directories of their own): each sees the
// other's writes through its subscription, and a topic created by one is
// refused as existing by the other.
func TestTwoInstancesOnJetStream(t *testing.T) {
	ns := startNATS(t, t.TempDir(), 0)
	t.Cleanup(func() { ns.Shutdown() })
	base := config.Default()
	base.HTTPListen, base.MQTTListen = "127.0.0.1:0", "127.0.0.1:0"
	base.Store = ns.ClientURL() + "?stream=TWO&prefix=two"
	start := func(cfg config.Config, out io.Writer) *server.Server {
		srv, err := server.Start(context.Background(), cfg, server.Options{Out: out, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("start server: %v", err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		})
		return srv
	}
	cfgA := base
	cfgA.DataDir = t.TempDir()
	var out bytes.Buffer
	a := start(cfgA, &out)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	token := strings.TrimSpace(lines[len(lines)-1])
	cfgB := base
	cfgB.DataDir = t.TempDir()
	cfgB.MasterKeyFile = cfgA.MasterKeyPath()
	b := start(cfgB, io.Discard)

	do := func(srv *server.Server, method, path string, body any) (int, string) {
		return apiRequest(t, srv.HTTPAddr(), token, method, path, body)
	}
	count := func(srv *server.Server) int {
		st, body := do(srv, "GET", "/api/v1/count/topics", nil)
		var c struct {
			Count int `json:"count"`
		}
		if st != nethttp.StatusOK || json.Unmarshal([]byte(body), &c) != nil {
			t.Fatalf("count topics: %d %s", st, body)
		}
		return c.Count
	}
	if st, body := do(a, "POST", "/api/v1/topics", map[string]string{"topic": "shared/a"}); st != nethttp.StatusCreated {
		t.Fatalf("A creates a topic: %d %s", st, body)
	}
	testwait.For(t, "B to see A's topic", func() bool { return count(b) == 1 })
	if st, body := do(b, "POST", "/api/v1/topics", map[string]string{"topic": "shared/a"}); st != nethttp.StatusConflict {
		t.Fatalf("B creates A's topic again: %d %s, want 409", st, body)
	}
	if st, body := do(b, "POST", "/api/v1/topics", map[string]string{"topic": "shared/b"}); st != nethttp.StatusCreated {
		t.Fatalf("B creates a topic: %d %s", st, body)
	}
	testwait.For(t, "A to see B's topic", func() bool { return count(a) == 2 })
}

// TestLeasesOnJetStream: two instances on one JetStream log hold each
// duty's lease one at a time, report it in /metrics, and a graceful stop
// of the holder hands its leases over at once (released), not after the
// lease duration.
func TestLeasesOnJetStream(t *testing.T) {
	ns := startNATS(t, t.TempDir(), 0)
	t.Cleanup(func() { ns.Shutdown() })
	base := config.Default()
	base.HTTPListen, base.MQTTListen = "127.0.0.1:0", "127.0.0.1:0"
	base.Store = ns.ClientURL() + "?stream=LEASE&prefix=lease"
	base.LeaseDuration = config.Duration{Duration: time.Minute} // a takeover within the test comes from a release
	startOne := func(id string, cfg config.Config, out io.Writer) *server.Server {
		cfg.InstanceID = id
		srv, err := server.Start(context.Background(), cfg, server.Options{Out: out, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		return srv
	}
	cfgA := base
	cfgA.DataDir = t.TempDir()
	a := startOne("a", cfgA, io.Discard)
	holds := func(srv *server.Server, duty string) bool {
		for _, st := range srv.LeaseStatus() {
			if st.Duty == duty {
				return st.State.String() == "holder"
			}
		}
		return false
	}
	testwait.For(t, "A to hold both leases", func() bool { return holds(a, server.DutyDelivery) && holds(a, server.DutySchedules) })
	cfgB := base
	cfgB.DataDir = t.TempDir()
	cfgB.MasterKeyFile = cfgA.MasterKeyPath()
	b := startOne("b", cfgB, io.Discard)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = b.Shutdown(ctx)
	})
	testwait.For(t, "B to see A holding the delivery lease", func() bool {
		for _, st := range b.LeaseStatus() {
			if st.Duty == server.DutyDelivery && strings.HasPrefix(st.Holder, "a/") {
				return true
			}
		}
		return false
	})
	if holds(b, server.DutyDelivery) || holds(b, server.DutySchedules) {
		t.Fatal("B holds a lease A holds")
	}
	resp, err := nethttp.Get("http://" + b.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `e4c2_lease_state{duty="delivery",state="standby"} 1`) {
		t.Fatalf("B's metrics do not say standby:\n%s", grepLines(string(metrics), "e4c2_lease"))
	}
	resp, err = nethttp.Get("http://" + b.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := resp.Header.Get(server.LeasesHeader); h != "delivery=standby(a); schedules=standby(a)" {
		t.Fatalf("B's /readyz %s: %q", server.LeasesHeader, h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// The lease duration is a minute: only A's release lets B take over
	// within testwait's bound.
	testwait.For(t, "B to take both leases after A released them", func() bool {
		return holds(b, server.DutyDelivery) && holds(b, server.DutySchedules)
	})
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// gatedStore holds the records of its subscriptions back while closed: an
// instance whose projections lag behind the log.
type gatedStore struct {
	eventstore.Store
	mu   sync.Mutex
	open chan struct{} // nil: open
}

func (g *gatedStore) LoadKeyring(ctx context.Context) ([]byte, error) {
	return g.Store.(eventstore.KeyringStorage).LoadKeyring(ctx)
}

func (g *gatedStore) SaveKeyring(ctx context.Context, k []byte) error {
	return g.Store.(eventstore.KeyringStorage).SaveKeyring(ctx, k)
}

func (g *gatedStore) close() { g.mu.Lock(); g.open = make(chan struct{}); g.mu.Unlock() }

func (g *gatedStore) release() {
	g.mu.Lock()
	if g.open != nil {
		close(g.open)
		g.open = nil
	}
	g.mu.Unlock()
}

func (g *gatedStore) Subscribe(ctx context.Context, from uint64, fn func(eventstore.Record) error) error {
	return g.Store.Subscribe(ctx, from, func(r eventstore.Record) error {
		g.mu.Lock()
		gate := g.open
		g.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return fn(r)
	})
}

// TestReadYourWritesAcrossInstances: a write answered by instance A names
// its log position (X-E4C2-Position); instance B, whose projections are
// held back, does not show the write to a plain read, answers a read that
// sends the position back (X-E4C2-Min-Position) with 503
// position_not_reached while it cannot reach it, and with the write as
// soon as its projections get there.
func TestReadYourWritesAcrossInstances(t *testing.T) {
	ns := startNATS(t, t.TempDir(), 0)
	t.Cleanup(func() { ns.Shutdown() })
	base := config.Default()
	base.HTTPListen, base.MQTTListen = "127.0.0.1:0", "127.0.0.1:0"
	base.Store = ns.ClientURL() + "?stream=RYW&prefix=ryw"
	start := func(cfg config.Config, out io.Writer, wrap func(eventstore.Store) eventstore.Store) *server.Server {
		srv, err := server.Start(context.Background(), cfg, server.Options{Out: out, Logger: slog.New(slog.DiscardHandler), WrapStore: wrap})
		if err != nil {
			t.Fatalf("start server: %v", err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		})
		return srv
	}
	cfgA := base
	cfgA.DataDir = t.TempDir()
	var out bytes.Buffer
	a := start(cfgA, &out, nil)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	token := strings.TrimSpace(lines[len(lines)-1])
	cfgB := base
	cfgB.DataDir = t.TempDir()
	cfgB.MasterKeyFile = cfgA.MasterKeyPath()
	gate := &gatedStore{}
	b := start(cfgB, io.Discard, func(st eventstore.Store) eventstore.Store { gate.Store = st; return gate })

	do := func(srv *server.Server, method, path string, hdr map[string]string) (*nethttp.Response, string) {
		req, _ := nethttp.NewRequest(method, "http://"+srv.HTTPAddr()+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := nethttp.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	testwait.For(t, "B to be ready", func() bool { r, _ := do(b, "GET", "/readyz", nil); return r.StatusCode == nethttp.StatusOK })
	gate.close()
	t.Cleanup(gate.release)

	req, _ := nethttp.NewRequest("POST", "http://"+a.HTTPAddr()+"/api/v1/topics", strings.NewReader(`{"topic":"ryw/one"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	pos := resp.Header.Get(server.PositionHeader)
	if resp.StatusCode != nethttp.StatusCreated || pos == "" || pos == "0" {
		t.Fatalf("write on A: %d, %s %q", resp.StatusCode, server.PositionHeader, pos)
	}
	if r, _ := do(a, "GET", "/api/v1/topics/ryw%2Fone", nil); r.StatusCode != nethttp.StatusOK {
		t.Fatalf("A does not read its own write: %d", r.StatusCode)
	}
	if r, _ := do(b, "GET", "/api/v1/topics/ryw%2Fone", nil); r.StatusCode != nethttp.StatusNotFound {
		t.Fatalf("B, held back, shows the write to a plain read: %d (the test proves nothing)", r.StatusCode)
	}
	r, body := do(b, "GET", "/api/v1/topics/ryw%2Fone", map[string]string{server.MinPositionHeader: pos})
	at, _ := strconv.ParseUint(r.Header.Get(server.PositionHeader), 10, 64)
	want, _ := strconv.ParseUint(pos, 10, 64)
	if r.StatusCode != nethttp.StatusServiceUnavailable || !strings.Contains(body, "position_not_reached") || at >= want {
		t.Fatalf("B held back, read at %s: %d %s (at %s)", pos, r.StatusCode, body, r.Header.Get(server.PositionHeader))
	}
	answered := make(chan int, 1)
	go func() {
		r, _ := do(b, "GET", "/api/v1/topics/ryw%2Fone", map[string]string{server.MinPositionHeader: pos})
		answered <- r.StatusCode
	}()
	gate.release()
	if code := testwait.Ready(t, "B's answer at the write's position", answered); code != nethttp.StatusOK {
		t.Fatalf("B at the write's position: %d, want 200", code)
	}
}
