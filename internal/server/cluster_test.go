package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/e4c2/e4c2/eventstore/jetstream"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/testbroker"
	"github.com/e4c2/e4c2/internal/testwait"
)

// clusterConfigs returns the configurations of n instances in integrated
// mode (serve --cluster) on loopback: each node's routes listen on a free
// port and name the other nodes as peers.
func clusterConfigs(t *testing.T, n int, masterEnv string) []config.Config {
	t.Helper()
	var routes []string
	for range n {
		routes = append(routes, testbroker.FreeAddr(t))
	}
	var cfgs []config.Config
	for i := range n {
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.HTTPListen, cfg.MQTTListen = "127.0.0.1:0", "127.0.0.1:0"
		cfg.MasterKeyEnv = masterEnv
		cfg.InstanceID = fmt.Sprintf("c2-%d", i+1)
		cfg.LogLevel = "warn"
		cfg.Cluster = config.ClusterConfig{Enabled: true, Listen: routes[i], ClientListen: "127.0.0.1:0"}
		for j, r := range routes {
			if j != i {
				cfg.Cluster.Peers = append(cfg.Cluster.Peers, "nats://"+r)
			}
		}
		cfgs = append(cfgs, cfg)
	}
	return cfgs
}

func startClusterInstance(t *testing.T, cfg config.Config, out io.Writer) (*Server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := Start(ctx, cfg, Options{Out: out, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv, nil
}

// clusterWrite creates topic through base, retrying while a node change
// makes the answer an error; a retry may find the topic created by an
// attempt whose answer was lost (409). It returns the log position.
func clusterWrite(t *testing.T, base, token, topic string) uint64 {
	t.Helper()
	var pos uint64
	tries := 0
	testwait.For(t, "a write of "+topic+" through "+base, func() bool {
		tries++
		code, body, p := haDo(t, nethttp.MethodPost, base+"/api/v1/topics", token, map[string]string{"topic": topic}, 0)
		switch {
		case code == nethttp.StatusCreated:
			pos = p
			return true
		case code == nethttp.StatusConflict && tries > 1:
			pos = p
			return true
		case code >= 400 && code < 500 && code != nethttp.StatusTooManyRequests:
			t.Fatalf("create %s: %d %s", topic, code, body)
		}
		t.Logf("create %s: %d %s (retrying)", topic, code, body)
		return false
	})
	return pos
}

// clusterRead checks that base serves topic once it applied the log up to
// minPos. An instance whose tail of the log is resubscribing after a node
// change answers 503 position_not_reached: the read is retried then.
func clusterRead(t *testing.T, base, token, topic string, minPos uint64) {
	t.Helper()
	testwait.For(t, "a read of "+topic+" through "+base, func() bool {
		code, body, _ := haDo(t, nethttp.MethodGet, base+"/api/v1/topics/"+url.PathEscape(topic), token, nil, minPos)
		switch {
		case code == nethttp.StatusOK:
			return true
		case code == nethttp.StatusServiceUnavailable && strings.Contains(string(body), "position_not_reached"):
			return false
		}
		t.Fatalf("read %s through %s at position %d: %d %s", topic, base, minPos, code, body)
		return false
	})
}

// TestIntegratedCluster is the integrated mode of issue 15: three C2
// instances with serve --cluster and the other two as peers run their own
// JetStream cluster (replicas 3) and share one log. A write through
// instance 1 is read through instance 3; the instance whose node leads
// the JetStream meta group is stopped and a write through a survivor is
// seen by the other; the stopped instance restarts on its data and serves
// both writes.
func TestIntegratedCluster(t *testing.T) {
	began := time.Now()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	t.Setenv("E4C2_TEST_CLUSTER_MASTER", hex.EncodeToString(key))
	cfgs := clusterConfigs(t, 3, "E4C2_TEST_CLUSTER_MASTER")

	// The three start together: none is ready before a quorum of nodes is.
	srvs := make([]*Server, 3)
	outs := make([]bytes.Buffer, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srvs[i], errs[i] = startClusterInstance(t, cfgs[i], &outs[i])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i+1, err)
		}
	}
	t.Logf("three instances started in %v", time.Since(began).Round(time.Millisecond))

	// Exactly one instance, the meta leader's, made the first admin token.
	var token string
	printed := 0
	for i := range outs {
		s := outs[i].String()
		if _, tok, ok := strings.Cut(s, "admin API token (shown once; store it now, e.g. export E4C2_TOKEN=...):\n"); ok {
			token = strings.TrimSpace(tok)
			printed++
		}
	}
	if printed != 1 {
		t.Fatalf("%d instances printed a first admin token, want 1", printed)
	}
	base := func(i int) string { return "http://" + srvs[i].HTTPAddr() }
	for i, s := range srvs {
		if s.natsNode == nil {
			t.Fatalf("instance %d runs no NATS node", i+1)
		}
		if got := s.cfg.Cluster.EffectiveReplicas(); got != 3 {
			t.Fatalf("replicas %d, want 3", got)
		}
	}

	pos := clusterWrite(t, base(0), token, "integrated/one")
	clusterRead(t, base(2), token, "integrated/one", pos)
	checkClientPortToken(t, srvs[0], cfgs[0])

	// Stop the instance whose node leads the JetStream meta group.
	leader := -1
	testwait.For(t, "a JetStream meta leader", func() bool {
		for i, s := range srvs {
			if s.natsNode.IsMetaLeader() {
				leader = i
				return true
			}
		}
		return false
	})
	stopped := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srvs[leader].Shutdown(ctx); err != nil {
		t.Fatalf("stop instance %d: %v", leader+1, err)
	}
	t.Logf("instance %d stopped in %v", leader+1, time.Since(stopped).Round(time.Millisecond))
	w, r := (leader+1)%3, (leader+2)%3
	pos2 := clusterWrite(t, base(w), token, "integrated/two")
	clusterRead(t, base(r), token, "integrated/two", pos2)
	clusterRead(t, base(r), token, "integrated/one", pos2)
	t.Logf("meta leader (instance %d) stopped: a write through instance %d succeeded and was read through instance %d %v later",
		leader+1, w+1, r+1, time.Since(stopped).Round(time.Millisecond))

	// The stopped instance restarts on its data and catches up.
	restarted, err := startClusterInstance(t, cfgs[leader], io.Discard)
	if err != nil {
		t.Fatalf("restart instance %d: %v", leader+1, err)
	}
	rb := "http://" + restarted.HTTPAddr()
	clusterRead(t, rb, token, "integrated/one", pos2)
	clusterRead(t, rb, token, "integrated/two", pos2)
	t.Logf("whole test %v", time.Since(began).Round(time.Millisecond))
}

// checkClientPortToken: the node's loopback client port refuses a client
// without the token (any local user could otherwise append to the log),
// and the token file (mode 0600 in <data_dir>/nats) lets a local tool in.
func checkClientPortToken(t *testing.T, srv *Server, cfg config.Config) {
	t.Helper()
	u := srv.natsNode.ClientURL()
	if nc, err := nats.Connect(u, nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatalf("the node's client port %s accepted a client without the token", u)
	}
	if nc, err := nats.Connect(u, nats.MaxReconnects(0), nats.Token("not-the-token")); err == nil {
		nc.Close()
		t.Fatal("the node's client port accepted a wrong token")
	}
	path := filepath.Join(cfg.DataDir, "nats", ClientTokenFile)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file %s: %v %v, want mode 0600", path, fi, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := jetstream.Open(ctx, u+"?"+url.Values{"token_file": {path}}.Encode(), nil)
	if err != nil {
		t.Fatalf("a local tool with the token file: %v", err)
	}
	defer st.Close()
	if recs, err := st.ReadAll(ctx, 1, 1); err != nil || len(recs) != 1 {
		t.Fatalf("read through the token file: %d records, %v", len(recs), err)
	}
}

// TestIntegratedClusterBinary runs the integrated mode through the built
// binary's flags: three `e4c2 serve --cluster` processes started together
// serve one log (a write through the first is read through the third),
// exactly one prints the first admin token, and one stops cleanly on
// SIGTERM (C2, then its NATS node) while the other two keep writing.
func TestIntegratedClusterBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three processes: not in -short")
	}
	bin := buildE4c2(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	t.Setenv("E4C2_TEST_CLUSTER_MASTER", hex.EncodeToString(key))
	cfgs := clusterConfigs(t, 3, "E4C2_TEST_CLUSTER_MASTER")
	procs := make([]*proc, 3)
	bases := make([]string, 3)
	for i, cfg := range cfgs {
		bases[i] = "http://" + testbroker.FreeAddr(t)
		procs[i] = startProc(t, bin, "serve", "--data-dir", cfg.DataDir,
			"--http-listen", strings.TrimPrefix(bases[i], "http://"), "--mqtt-listen", testbroker.FreeAddr(t),
			"--master-key-env", cfg.MasterKeyEnv, "--instance-id", cfg.InstanceID,
			"--cluster", "--cluster-listen", cfg.Cluster.Listen, "--cluster-client-listen", "127.0.0.1:0",
			"--cluster-peers", strings.Join(cfg.Cluster.Peers, ","))
	}
	for i, p := range procs {
		waitHealthy(t, bases[i], p)
	}
	var token string
	printed := 0
	for _, p := range procs {
		if _, tok, ok := strings.Cut(p.stdout.String(), "admin API token (shown once; store it now, e.g. export E4C2_TOKEN=...):\n"); ok {
			token, _, _ = strings.Cut(tok, "\n")
			printed++
		}
	}
	if printed != 1 {
		t.Fatalf("%d processes printed a first admin token, want 1", printed)
	}
	pos := clusterWrite(t, bases[0], token, "binary/one")
	clusterRead(t, bases[2], token, "binary/one", pos)
	stopProc(t, procs[0], 20*time.Second)
	pos = clusterWrite(t, bases[1], token, "binary/two")
	clusterRead(t, bases[2], token, "binary/two", pos)
}

// TestClusterClientToken: the client port's token is made once (mode 0600)
// and kept across restarts; a token file others may read is refused.
func TestClusterClientToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), ClientTokenFile)
	first, err := clusterClientToken(path)
	if err != nil || len(first) != 64 {
		t.Fatalf("first token: %d chars, %v", len(first), err)
	}
	again, err := clusterClientToken(path)
	if err != nil || again != first {
		t.Fatalf("second start: token changed or %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = clusterClientToken(path)
	if !errors.Is(err, ErrInsecureSecretFile) || strings.Contains(err.Error(), first) {
		t.Fatalf("token file readable by others: %v, want ErrInsecureSecretFile without the token", err)
	}
}
