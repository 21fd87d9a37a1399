package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

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
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := nethttp.NewRequest(method, "http://"+srv.HTTPAddr()+path, rd)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := nethttp.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
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
		var rd io.Reader
		if body != nil {
			j, _ := json.Marshal(body)
			rd = bytes.NewReader(j)
		}
		req, _ := nethttp.NewRequest(method, "http://"+srv.HTTPAddr()+path, rd)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := nethttp.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		rb, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(rb)
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
