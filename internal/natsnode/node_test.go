package natsnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/e4c2/e4c2/internal/testwait"
)

func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return out
}

// TestThreeNodes starts three nodes together: each Start returns once the
// meta group has a leader, and exactly one node is that leader.
func TestThreeNodes(t *testing.T) {
	routes := freeAddrs(t, 3)
	nodes := make([]*Node, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		var peers []string
		for j, r := range routes {
			if j != i {
				peers = append(peers, "nats://"+r)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			nodes[i], errs[i] = Start(ctx, Options{ServerName: fmt.Sprintf("n%d", i+1), ClusterName: "t",
				StoreDir: t.TempDir(), ClientListen: "127.0.0.1:0", RouteListen: routes[i], Peers: peers})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
		t.Cleanup(nodes[i].Shutdown)
	}
	for _, n := range nodes {
		if n.MetaLeader() == "" {
			t.Errorf("%s knows no meta leader", n.Name())
		}
	}
	// Every node already names a leader; the leader's own flag may follow
	// a moment later (seen once in CI: 0 leaders right after the start).
	testwait.For(t, "exactly one node to be the meta leader", func() bool {
		leaders := 0
		for _, n := range nodes {
			if n.IsMetaLeader() {
				leaders++
			}
		}
		if leaders > 1 {
			t.Fatalf("%d meta leaders, want 1", leaders)
		}
		return leaders == 1
	})
}

// TestAloneIsNotReady: a node whose peers are all down never becomes
// ready, and Start gives up with ErrNotReady at its context's end.
func TestAloneIsNotReady(t *testing.T) {
	routes := freeAddrs(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := Start(ctx, Options{ServerName: "alone", ClusterName: "t", StoreDir: t.TempDir(),
		ClientListen: "127.0.0.1:0", RouteListen: routes[0], Peers: []string{"nats://" + routes[1], "nats://" + routes[2]}})
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("Start alone: %v, want ErrNotReady", err)
	}
}
