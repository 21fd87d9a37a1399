package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	jsapi "github.com/nats-io/nats.go/jetstream"

	"github.com/e4c2/e4c2/internal/natsnode"
	"github.com/e4c2/e4c2/internal/testwait"
)

// natsNodeEnv and natsNodeReady are nodeproc's environment variable and
// ready line (internal/natsnode/nodeproc, a main package: not importable).
const (
	natsNodeEnv   = "E4C2_NATS_NODE"
	natsNodeReady = "nats node ready "
)

// nodeSpec is what nodeproc reads from natsNodeEnv (its spec type: a main
// package cannot be imported).
type nodeSpec struct {
	ServerName, ClusterName, StoreDir, ClientListen, RouteListen string
	Peers                                                        []string
	ReadyTimeout                                                 time.Duration
}

// buildNodeProc builds internal/natsnode/nodeproc, without the race
// detector whatever the test's flags (see its documentation).
func buildNodeProc(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nodeproc")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/e4c2/e4c2/internal/natsnode/nodeproc")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build nodeproc: %v\n%s", err, out)
	}
	return bin
}

// natsProcs is a 3-node JetStream cluster whose nodes are child processes
// (internal/natsnode/nodeproc).
type natsProcs struct {
	bin   string // nodeproc
	specs []natsnode.Options
	procs []*proc // nil while the node is down
	urls  []string
	all   []*proc // every node process started, killed ones included
}

// natsStartAttempts bounds the retries of a cluster start: an attempt only
// fails early when a chosen port was taken in the meantime.
const natsStartAttempts = 3

// startNATSProcs starts the three node processes and waits until the
// cluster answers JetStream requests.
func startNATSProcs(t *testing.T) *natsProcs {
	t.Helper()
	bin := buildNodeProc(t)
	for attempt := 1; ; attempt++ {
		c, err := tryNATSProcs(t, bin)
		if err == nil {
			return c
		}
		if attempt == natsStartAttempts {
			t.Fatalf("NATS cluster: %v", err)
		}
		t.Logf("NATS cluster start attempt %d: %v; retrying with other ports", attempt, err)
	}
}

// tryNATSProcs is one attempt of startNATSProcs; on error no node of it
// keeps running.
func tryNATSProcs(t *testing.T, bin string) (*natsProcs, error) {
	t.Helper()
	// The ports are chosen here, not by the nodes: every node must know its
	// peers' route ports before it starts, and a restarted node must come
	// back on the same ones. Held open together, they are distinct.
	addrs := make([]string, 6)
	var ls []net.Listener
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		addrs[i] = l.Addr().String()
	}
	for _, l := range ls {
		_ = l.Close()
	}
	c := &natsProcs{bin: bin, procs: make([]*proc, 3), urls: make([]string, 3)}
	for i := range 3 {
		var peers []string
		for j := range 3 {
			if j != i {
				peers = append(peers, "nats://"+addrs[3+j])
			}
		}
		c.specs = append(c.specs, natsnode.Options{ServerName: fmt.Sprintf("n%d", i+1), ClusterName: "e4c2-ha",
			StoreDir: t.TempDir(), ClientListen: addrs[i], RouteListen: addrs[3+i], Peers: peers,
			ReadyTimeout: 2 * testwait.Timeout})
	}
	for i := range 3 {
		c.spawn(t, i)
	}
	for i := range 3 {
		if err := c.waitReady(i); err != nil {
			for j := range 3 {
				c.kill(t, j)
			}
			return nil, err
		}
	}
	// Each node saw a meta leader; the cluster is usable once a JetStream
	// request through the client URLs is answered.
	nc := c.connect(t)
	js, err := jsapi.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// A meta leader places a replicas=3 stream only once it has every
	// node's stats ("no suitable peers for placement" before): a probe
	// stream shows it, before the instances create theirs.
	testwait.For(t, "the NATS cluster to place a stream on its 3 nodes", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := js.CreateStream(ctx, jsapi.StreamConfig{Name: "PROBE", Subjects: []string{"probe"}, Replicas: 3, Storage: jsapi.MemoryStorage})
		return err == nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, "PROBE"); err != nil {
		t.Fatalf("delete the probe stream: %v", err)
	}
	return c, nil
}

// spawn starts node i's process (again, after a kill: same store and ports).
func (c *natsProcs) spawn(t *testing.T, i int) {
	t.Helper()
	o := c.specs[i]
	spec, err := json.Marshal(nodeSpec{ServerName: o.ServerName, ClusterName: o.ClusterName, StoreDir: o.StoreDir,
		ClientListen: o.ClientListen, RouteListen: o.RouteListen, Peers: o.Peers, ReadyTimeout: o.ReadyTimeout})
	if err != nil {
		t.Fatal(err)
	}
	c.procs[i] = startProcEnv(t, []string{natsNodeEnv + "=" + string(spec)}, c.bin)
	c.all = append(c.all, c.procs[i])
}

// waitReady waits for node i's ready line, or its early exit.
func (c *natsProcs) waitReady(i int) error {
	p := c.procs[i]
	deadline := time.After(c.specs[i].ReadyTimeout + 10*time.Second)
	for {
		select {
		case line := <-p.lines:
			if u, ok := strings.CutPrefix(line, natsNodeReady); ok {
				c.urls[i] = u
				return nil
			}
		case <-p.done:
			return fmt.Errorf("node %s exited while starting: %v\n%s%s", c.specs[i].ServerName, p.err, p.stdout.String(), p.stderr.String())
		case <-deadline:
			return fmt.Errorf("node %s not ready\n%s", c.specs[i].ServerName, p.stderr.String())
		}
	}
}

// kill sends SIGKILL to node i (Process.Kill) and waits for its exit.
func (c *natsProcs) kill(t *testing.T, i int) {
	t.Helper()
	if c.procs[i] == nil {
		return
	}
	if err := c.procs[i].cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	c.procs[i].wait(t, 10*time.Second)
	c.procs[i] = nil
}

// restart starts the killed node i again from its store and waits until it
// is ready (it has rejoined the meta group).
func (c *natsProcs) restart(t *testing.T, i int) {
	t.Helper()
	c.spawn(t, i)
	if err := c.waitReady(i); err != nil {
		t.Fatal(err)
	}
}

// clientURLs are the client URLs of the running nodes, comma-separated.
func (c *natsProcs) clientURLs() string {
	var u []string
	for i, p := range c.procs {
		if p != nil {
			u = append(u, c.urls[i])
		}
	}
	return strings.Join(u, ",")
}

// connect returns a connection to the running nodes, closed at the end of
// the test.
func (c *natsProcs) connect(t *testing.T) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(c.clientURLs(), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// streamCluster returns the cluster view of a stream, nil when unavailable.
func streamCluster(js jsapi.JetStream, stream string) *jsapi.ClusterInfo {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil
	}
	return info.Cluster
}

// streamLeader returns the index of the node leading stream.
func (c *natsProcs) streamLeader(t *testing.T, js jsapi.JetStream, stream string) int {
	t.Helper()
	leader := -1
	testwait.For(t, "a leader of stream "+stream, func() bool {
		if ci := streamCluster(js, stream); ci != nil {
			for i, s := range c.specs {
				if s.ServerName == ci.Leader {
					leader = i
				}
			}
		}
		return leader >= 0
	})
	return leader
}

// waitReplicasCurrent waits until stream has a leader and all its other
// replicas are online and current.
func waitReplicasCurrent(t *testing.T, js jsapi.JetStream, stream string, replicas int) {
	t.Helper()
	testwait.For(t, fmt.Sprintf("stream %s to have %d current replicas", stream, replicas), func() bool {
		ci := streamCluster(js, stream)
		if ci == nil || ci.Leader == "" || len(ci.Replicas) != replicas-1 {
			return false
		}
		for _, r := range ci.Replicas {
			if !r.Current || r.Offline {
				return false
			}
		}
		return true
	})
}
