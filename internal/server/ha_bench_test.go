package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/testbroker"
	"github.com/e4c2/e4c2/internal/testwait"
)

// BenchmarkAttachInstances compares, in one run, attach throughput through
// the API on the embedded store (one instance) and on a real 3-node
// JetStream cluster (replication 3) with one and with three instances:
//
//	go test -run '^$' -bench BenchmarkAttachInstances -benchtime 400x ./internal/server/
//
// Eight callers send attach requests (PUT /clients/{c}/topics/{t}, each a
// new link, so each is a decision appended to the log and a SetTopicKey
// queued): 64 clients per topic, each topic's requests to one instance, or
// (contended) every topic's requests spread over all instances. No device is connected: the
// commands wait for their devices, so the figure is the API and the log,
// not the delivery fan-out. All instances and the NATS nodes run in this
// one process on this machine's two cores: three instances share the same
// CPU as one, so the ratio shows the cost of the shared log and of the
// coordination, not the capacity a deployment on three machines would have.
func BenchmarkAttachInstances(b *testing.B) {
	for _, tc := range []struct {
		name      string
		instances int
		jetstream bool
		contended bool // a topic's attaches spread over every instance
	}{{"embedded-1", 1, false, false}, {"jetstream-1", 1, true, false},
		{"jetstream-3", 3, true, false}, {"jetstream-3-contended", 3, true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			addrs, token, names := benchInstances(b, tc.instances, tc.jetstream)
			const callers = 8
			var next, failed atomic.Int64
			var firstErr atomic.Value
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for c := range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					client := &nethttp.Client{Timeout: 30 * time.Second}
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						topic := i / int64(len(names))
						path := fmt.Sprintf("/api/v1/clients/%s/topics/bench%%2Ft%d", names[i%int64(len(names))], topic)
						// A topic's decisions are serialized on its stream:
						// one instance per topic (a load balancer with
						// affinity) keeps them in one process; spread over
						// every instance they meet as expected-version
						// conflicts, retried after a re-read.
						at := addrs[int(topic)%len(addrs)]
						if tc.contended {
							at = addrs[(int(i)+c)%len(addrs)]
						}
						req, _ := nethttp.NewRequest(nethttp.MethodPut, "http://"+at+path, nil)
						req.Header.Set("Authorization", "Bearer "+token)
						resp, err := client.Do(req)
						if err == nil {
							_, _ = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							if resp.StatusCode >= 300 {
								err = fmt.Errorf("attach: %s", resp.Status)
							}
						}
						if err != nil {
							failed.Add(1)
							firstErr.CompareAndSwap(nil, err.Error())
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d of %d attaches failed, first: %v", n, b.N, firstErr.Load())
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "attaches/s")
		})
	}
}

// benchInstances starts n instances on one log (the embedded store when
// jetstream is false, else a fresh 3-node cluster) and registers the
// clients and topics the attaches use; it returns the API addresses, an
// admin token and the client names.
func benchInstances(b *testing.B, n int, jetstream bool) ([]string, string, []string) {
	b.Helper()
	srvs, token := startBenchInstances(b, n, jetstream, nil)
	first := srvs[0]
	ctx := context.Background()
	sys := c2.Origin{Actor: "bench"}
	var names []string
	for i := range 64 {
		name := fmt.Sprintf("dev-%d", i)
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		if _, err := first.Service().NewClient(ctx, sys, c2.ByName(name), key, domain.RoleBoth); err != nil {
			b.Fatal(err)
		}
		names = append(names, name)
	}
	for t := range b.N/len(names) + 1 {
		if _, err := first.Service().NewTopic(ctx, sys, fmt.Sprintf("bench/t%d", t)); err != nil {
			b.Fatal(err)
		}
	}
	// Every instance must know the clients and topics before the clock
	// starts (a shared log is read by each instance's own subscription).
	topics := b.N/len(names) + 1
	addrs := benchAddrs(srvs)
	for _, a := range addrs {
		testwait.For(b, "instance "+a+" to read the registrations", func() bool {
			st, body, _ := haDo(b, "GET", "http://"+a+"/api/v1/count/topics", token, nil, 0)
			return st == nethttp.StatusOK && strings.Contains(string(body), fmt.Sprintf(`"count":%d`, topics))
		})
	}
	return addrs, token, names
}

// startBenchInstances starts n instances on one log (the embedded store
// when jetstream is false, else a fresh 3-node cluster, replication 3),
// each configuration edited by edit when it is not nil; it returns the
// instances and the admin token the first one printed.
func startBenchInstances(b *testing.B, n int, jetstream bool, edit func(*config.Config)) ([]*Server, string) {
	b.Helper()
	base := resConfig(b.TempDir(), "standard", "sk", "")
	if jetstream {
		c := startNATSCluster(b)
		base.Store = c.urls() + "?replicas=3&stream=BENCH&prefix=bench"
	}
	if edit != nil {
		edit(&base)
	}
	var srvs []*Server
	var token string
	for i := range n {
		cfg := base
		if i > 0 {
			cfg.DataDir = b.TempDir()
			cfg.MasterKeyFile = base.MasterKeyPath()
		}
		cfg.InstanceID = fmt.Sprintf("bench-%d", i+1)
		var out bytes.Buffer
		srv, err := Start(context.Background(), cfg, Options{Out: &out, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatalf("start instance %d: %v", i+1, err)
		}
		b.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		})
		if i == 0 {
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			token = strings.TrimSpace(lines[len(lines)-1])
		}
		srvs = append(srvs, srv)
	}
	return srvs, token
}

func benchAddrs(srvs []*Server) []string {
	var addrs []string
	for _, s := range srvs {
		addrs = append(addrs, s.HTTPAddr())
	}
	return addrs
}

// natsCluster is a 3-node JetStream cluster inside the test process: enough
// for the benchmark, which kills no node (TestHAThreeInstances runs its
// nodes as processes, natsProcs, to kill one with SIGKILL).
type natsCluster struct {
	nodes []*natsserver.Server
}

func startNATSCluster(t testing.TB) *natsCluster {
	t.Helper()
	var routes []*url.URL
	var ports []int
	for range 3 {
		_, p, _ := strings.Cut(testbroker.FreeAddr(t), ":")
		n, _ := strconv.Atoi(p)
		ports = append(ports, n)
		u, _ := url.Parse(fmt.Sprintf("nats://127.0.0.1:%d", n))
		routes = append(routes, u)
	}
	c := &natsCluster{}
	for i, port := range ports {
		ns, err := natsserver.NewServer(&natsserver.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			JetStreamMaxMemory: 64 << 20, JetStreamMaxStore: 1 << 30,
			Cluster: natsserver.ClusterOpts{Name: "e4c2-ha", Host: "127.0.0.1", Port: port},
			Routes:  routes,
		})
		if err != nil {
			t.Fatal(err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(20 * time.Second) {
			t.Fatal("nats-server did not start")
		}
		c.nodes = append(c.nodes, ns)
	}
	t.Cleanup(func() {
		for _, ns := range c.nodes {
			if ns != nil {
				ns.Shutdown()
			}
		}
	})
	// A leader alone is not enough: until it has every node's stats it
	// refuses to place a stream with replicas=3 ("no suitable peers for
	// placement, peer offline"), which failed an instance's start in
	// BenchmarkFanoutInstances about one run in ten.
	testwait.For(t, "a JetStream meta leader that sees the 3 nodes online", func() bool {
		for _, ns := range c.nodes {
			if ns.JetStreamIsLeader() && len(ns.JetStreamClusterPeers()) == len(c.nodes) {
				return true
			}
		}
		return false
	})
	return c
}

func (c *natsCluster) urls() string {
	var u []string
	for _, ns := range c.nodes {
		if ns != nil {
			u = append(u, ns.ClientURL())
		}
	}
	return strings.Join(u, ",")
}
