package jetstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	jsapi "github.com/nats-io/nats.go/jetstream"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/storetest"
	"github.com/e4c2/e4c2/internal/testwait"
)

// cluster is a 3-node JetStream cluster inside the test process.
type cluster struct {
	t     *testing.T
	mu    sync.Mutex
	nodes []*server.Server
	dirs  []string
	ports []int // cluster (route) ports, kept across restarts
}

// freePorts reserves n loopback ports by binding :0 and releasing them.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, ports: freePorts(t, 3)}
	for i := 0; i < 3; i++ {
		c.dirs = append(c.dirs, t.TempDir())
		c.nodes = append(c.nodes, nil)
	}
	for i := range c.nodes {
		c.start(i)
	}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, s := range c.nodes {
			if s != nil {
				s.Shutdown()
			}
		}
	})
	// The cluster serves JetStream once its meta group has a leader.
	testwait.For(t, "a JetStream meta leader", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, s := range c.nodes {
			if s.JetStreamIsLeader() {
				return true
			}
		}
		return false
	})
	return c
}

// start (re)starts node i with its store directory and route port.
func (c *cluster) start(i int) {
	var routes []*url.URL
	for _, p := range c.ports {
		u, _ := url.Parse(fmt.Sprintf("nats://127.0.0.1:%d", p))
		routes = append(routes, u)
	}
	s := startServer(c.t, fmt.Sprintf("n%d", i+1), c.dirs[i], c.ports[i], routes)
	c.mu.Lock()
	c.nodes[i] = s
	c.mu.Unlock()
}

// kill shuts node i down.
func (c *cluster) kill(i int) {
	c.mu.Lock()
	s := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	s.Shutdown()
	s.WaitForShutdown()
}

// urls returns the client URLs of the running nodes, comma-separated.
func (c *cluster) urls() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var u []string
	for _, s := range c.nodes {
		if s != nil {
			u = append(u, s.ClientURL())
		}
	}
	return strings.Join(u, ",")
}

func (c *cluster) index(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.nodes {
		if s != nil && s.Name() == name {
			return i
		}
	}
	return -1
}

// TestCluster runs the conformance suite on a 3-node cluster with streams
// replicated three times, then kills the stream leader in the middle of
// concurrent appends.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("3-node cluster: not in -short")
	}
	c := startCluster(t)
	t.Run("Conformance", func(t *testing.T) {
		storetest.RunBackend(t, storetest.Backend{Open: openOn(c.urls(), 3), Timeout: 30 * time.Second})
	})
	t.Run("LeaderKilledDuringAppends", func(t *testing.T) { testLeaderKilled(t, c) })
	t.Run("KeepsReplicas", func(t *testing.T) { testKeepsReplicas(t, c) })
	t.Run("ConsumerNodeKilled", func(t *testing.T) { testConsumerNodeKilled(t, c) })
	t.Run("QuorumLost", func(t *testing.T) { testQuorumLost(t, c) })
}

// testKeepsReplicas: an instance opened without a replication factor
// keeps the existing log's, never downgrading it.
func testKeepsReplicas(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	name := uniqName("REPL")
	for _, replicas := range []int{3, 0} {
		s, err := Open(ctx, c.urls(), &Options{Stream: name, SubjectPrefix: "repl", Replicas: replicas})
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range []interface {
			Info(context.Context, ...jsapi.StreamInfoOpt) (*jsapi.StreamInfo, error)
		}{s.log, s.keyring} {
			info, err := st.Info(ctx)
			if err != nil || info.Config.Replicas != 3 {
				t.Fatalf("opened with replicas %d: stream %s has %d replicas (%v), want 3", replicas, info.Config.Name, info.Config.Replicas, err)
			}
		}
		_ = s.Close()
	}
}

// appender is one concurrent writer of the kill test: it owns a stream
// (exact expected versions, sometimes several events at once) and also
// appends to a stream shared by every writer (Any).
type appender struct {
	own    string
	acked  []string // ids of acknowledged events, in acknowledgement order
	failed int      // appends that returned an error (outcome unknown)
}

func testLeaderKilled(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := &Options{Stream: uniqName("KILL"), SubjectPrefix: "kill", Replicas: 3, RetryFor: 40 * time.Second,
		RequestTimeout: 2 * time.Second}
	// Two C2 instances sharing the log, each with its own connection; the
	// first one created the stream, the second one connects to the stream
	// leader first, so that the kill also drops a client connection.
	var stores [2]*Store
	s1, err := Open(ctx, c.urls(), opts)
	if err != nil {
		t.Fatal(err)
	}
	stores[1] = s1
	info, err := s1.log.Info(ctx)
	if err != nil || info.Cluster == nil {
		t.Fatalf("stream info: %v", err)
	}
	leaderFirst := []string{c.nodes[c.index(info.Cluster.Leader)].ClientURL()}
	for _, u := range strings.Split(c.urls(), ",") {
		if u != leaderFirst[0] {
			leaderFirst = append(leaderFirst, u)
		}
	}
	o0 := *opts
	o0.NATSOptions = []nats.Option{nats.DontRandomize()}
	if stores[0], err = Open(ctx, strings.Join(leaderFirst, ","), &o0); err != nil {
		t.Fatal(err)
	}
	defer stores[0].Close()
	defer stores[1].Close()

	// A subscriber runs through the whole test.
	var subMu sync.Mutex
	var subRecs []eventstore.Record
	subCtx, subCancel := context.WithCancel(ctx)
	defer subCancel()
	subDone := make(chan error, 1)
	go func() {
		subDone <- stores[1].Subscribe(subCtx, 1, func(r eventstore.Record) error {
			subMu.Lock()
			subRecs = append(subRecs, r)
			subMu.Unlock()
			return nil
		})
	}()

	const writers, rounds, killAfter = 4, 60, 40
	shared := "shared"
	apps := make([]*appender, writers)
	var acked atomic.Int64
	killNow := make(chan struct{})
	var killOnce sync.Once
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		apps[w] = &appender{own: fmt.Sprintf("own-%d", w)}
		wg.Add(1)
		go func(w int, a *appender, st *Store) {
			defer wg.Done()
			var version uint64
			for r := 0; r < rounds; r++ {
				n := 1 + r%3 // 1, 2 or 3 events at once
				evs := make([]eventstore.EventData, n)
				for i := range evs {
					evs[i] = storetest.Event(w*1000 + r*10 + i)
				}
				stream, expected := a.own, int64(version)
				if r%4 == 3 {
					stream, expected = shared, eventstore.Any
				}
				v, err := st.Append(ctx, stream, expected, evs...)
				switch {
				case err == nil:
					for _, ev := range evs {
						a.acked = append(a.acked, ev.ID)
					}
					if stream == a.own {
						version = v
					}
					if acked.Add(int64(n)) >= killAfter {
						killOnce.Do(func() { close(killNow) })
					}
				case errors.Is(err, eventstore.ErrConflict):
					// The writer is the only one on its stream: a conflict
					// means an earlier attempt of this very append was
					// stored and then reported as failed.
					t.Errorf("writer %d: %v", w, err)
					return
				default:
					a.failed++
					t.Logf("writer %d round %d: append failed (outcome unknown): %v", w, r, err)
					if stream == a.own {
						recs, err := st.ReadStream(ctx, a.own, 1)
						if err != nil {
							t.Errorf("writer %d: resync: %v", w, err)
							return
						}
						version = uint64(len(recs))
					}
				}
			}
		}(w, apps[w], stores[w%2])
	}

	// Kill the stream leader once enough events were acknowledged.
	var killed int
	var failover time.Duration
	select {
	case <-killNow:
	case <-ctx.Done():
		t.Fatal("appends did not start")
	}
	info, err = stores[0].log.Info(ctx)
	if err != nil || info.Cluster == nil {
		t.Fatalf("stream info: %v", err)
	}
	killed = c.index(info.Cluster.Leader)
	if killed < 0 {
		t.Fatalf("leader %q is not a node", info.Cluster.Leader)
	}
	atKill := acked.Load()
	killedAt := time.Now()
	t.Logf("killing stream leader %s after %d acknowledged events (instances connected to %s and %s)",
		info.Cluster.Leader, atKill, stores[0].nc.ConnectedServerName(), stores[1].nc.ConnectedServerName())
	c.kill(killed)
	// The first acknowledgement after the kill measures the failover.
	testwait.For(t, "an append acknowledged after the kill", func() bool { return acked.Load() > atKill+3 })
	failover = time.Since(killedAt)
	wg.Wait()
	if t.Failed() {
		return
	}

	// Bring the node back and wait until its replica is current again.
	c.start(killed)
	testwait.For(t, "three current replicas", func() bool {
		info, err := stores[0].log.Info(ctx)
		if err != nil || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
			return false
		}
		for _, p := range info.Cluster.Replicas {
			if !p.Current || p.Offline {
				return false
			}
		}
		return true
	})

	total, failed := 0, 0
	for _, a := range apps {
		total += len(a.acked)
		failed += a.failed
	}
	all := checkKillLog(t, ctx, stores[0], apps)
	t.Logf("%d writers, %d acknowledged events (%d before the kill), %d failed appends, %d appends found stored after a lost answer, log of %d events; acknowledgements again %v after the kill",
		writers, total, atKill, failed, stores[0].recovered.Load()+stores[1].recovered.Load(), len(all), failover.Round(time.Millisecond))

	// The subscription saw the same log, without gap or duplicate.
	testwait.For(t, "the subscriber to reach the end of the log", func() bool {
		subMu.Lock()
		defer subMu.Unlock()
		return len(subRecs) >= len(all)
	})
	subCancel()
	if err := <-subDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("subscription ended with %v, want context.Canceled", err)
	}
	subMu.Lock()
	defer subMu.Unlock()
	if len(subRecs) != len(all) {
		t.Fatalf("subscriber got %d records, the log holds %d", len(subRecs), len(all))
	}
	for i := range all {
		if subRecs[i].Position != all[i].Position || subRecs[i].ID != all[i].ID {
			t.Fatalf("subscriber record %d: position %d id %s, log has %d %s", i, subRecs[i].Position, subRecs[i].ID, all[i].Position, all[i].ID)
		}
	}
}

// checkKillLog reads the whole log back and checks that every acknowledged
// event is there exactly once, in each writer's order, with gap-free
// positions and valid chains.
func checkKillLog(t *testing.T, ctx context.Context, s *Store, apps []*appender) []eventstore.Record {
	t.Helper()
	var all []eventstore.Record
	for from := uint64(1); ; {
		page, err := s.ReadAll(ctx, from, 100)
		if err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		from = page[len(page)-1].Position + 1
	}
	pos := make(map[string]uint64, len(all))
	for i, r := range all {
		if r.Position != uint64(i+1) {
			t.Fatalf("record %d has position %d: gap", i, r.Position)
		}
		if _, dup := pos[r.ID]; dup {
			t.Fatalf("event %s stored twice", r.ID)
		}
		pos[r.ID] = r.Position
	}
	for w, a := range apps {
		var last uint64
		for _, id := range a.acked {
			p, ok := pos[id]
			if !ok {
				t.Fatalf("writer %d: acknowledged event %s lost", w, id)
			}
			if p <= last {
				t.Fatalf("writer %d: event %s at position %d, before an earlier acknowledged one (%d)", w, id, p, last)
			}
			last = p
		}
	}
	if _, err := eventstore.Verify(ctx, s, nil); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return all
}
