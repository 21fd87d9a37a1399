package jetstream

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/storetest"
	"github.com/e4c2/e4c2/internal/testwait"
)

// testConsumerNodeKilled kills the node that hosts a subscription's
// consumer while another instance keeps appending: the subscriber must get
// every record, in order, once, without its subscription ending. The
// client library usually recreates the consumer after missed heartbeats
// (2-10 s here); the stall watchdog covers the runs where it does not.
func testConsumerNodeKilled(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := &Options{Stream: uniqName("CKILL"), SubjectPrefix: "ckill", Replicas: 3, RequestTimeout: 2 * time.Second}
	sub, err := Open(ctx, c.urls(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	writer, err := Open(ctx, c.urls(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()

	var got atomic.Uint64
	subCtx, subCancel := context.WithCancel(ctx)
	defer subCancel()
	done := make(chan error, 1)
	go func() {
		done <- sub.Subscribe(subCtx, 1, func(r eventstore.Record) error {
			if r.Position != got.Load()+1 {
				t.Errorf("record at %d after %d", r.Position, got.Load())
			}
			got.Store(r.Position)
			return nil
		})
	}()
	appendOne := func(i int) {
		if _, err := writer.Append(ctx, "s", eventstore.Any, storetest.Event(i)); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	appendOne(1)
	testwait.For(t, "the first record", func() bool { return got.Load() == 1 })

	host, killed := consumerHost(ctx, t, c, sub)
	t.Logf("killing %s, the host of the subscription's consumer (subscriber connected to %s)", host, sub.nc.ConnectedServerName())
	c.kill(killed)
	killedAt := time.Now()
	defer c.start(killed)
	for i := 2; i <= 20; i++ {
		appendOne(i)
	}
	testwait.For(t, "the records appended after the kill", func() bool { return got.Load() == 20 })
	t.Logf("all records delivered %v after the kill; %d stalls", time.Since(killedAt).Round(time.Millisecond), sub.stalls.Load())
	select {
	case err := <-done:
		t.Fatalf("subscription ended: %v", err)
	default:
	}
}

// consumerHost returns the name and index in c of the node hosting the
// consumer of sub's subscription, the only consumer on its stream.
func consumerHost(ctx context.Context, t *testing.T, c *cluster, sub *Store) (string, int) {
	t.Helper()
	var host string
	lister := sub.log.ListConsumers(ctx)
	for info := range lister.Info() {
		if info.Cluster != nil {
			host = info.Cluster.Leader
		}
	}
	i := c.index(host)
	if i < 0 {
		t.Fatalf("consumer host %q is not a running node", host)
	}
	return host, i
}

// testQuorumLost kills the node hosting a subscription's consumer and a
// second node, so that the cluster cannot make a consumer any more: the
// client library's recovery of the consumer fails, and the subscription
// must end with an error (the read models then report it and subscribe
// again) instead of waiting inside the library for ever. The stall
// watchdog is set out of reach: the end must come from the failed
// recovery itself. Once the nodes are back, a subscription from the
// position gets the records appended since, once each.
func testQuorumLost(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := &Options{Stream: uniqName("QLOST"), SubjectPrefix: "qlost", Replicas: 3,
		RequestTimeout: time.Second, RetryFor: 2 * time.Second, StallAfter: time.Hour}
	// A node the previous case restarted may not be a peer again yet: the
	// stream cannot be placed on 3 nodes until it is.
	var sub *Store
	testwait.For(t, "the stream placed on 3 nodes", func() bool {
		s, err := Open(ctx, c.urls(), opts)
		if err != nil {
			t.Logf("open: %v", err)
			return false
		}
		sub = s
		return true
	})
	defer sub.Close()
	writer, err := Open(ctx, c.urls(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()

	var got atomic.Uint64
	deliver := func(r eventstore.Record) error {
		if r.Position != got.Load()+1 {
			t.Errorf("record at %d after %d", r.Position, got.Load())
		}
		got.Store(r.Position)
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- sub.Subscribe(ctx, 1, deliver) }()
	if _, err := writer.Append(ctx, "s", eventstore.Any, storetest.Event(1)); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the first record", func() bool { return got.Load() == 1 })

	host, first := consumerHost(ctx, t, c, sub)
	second := (first + 1) % 3
	t.Logf("killing %s (the consumer's host) and n%d", host, second+1)
	c.kill(first)
	c.kill(second)
	killedAt := time.Now()
	const bound = 90 * time.Second
	select {
	case err = <-done:
	case <-time.After(bound):
		t.Fatalf("the subscription did not end %v after the cluster lost its quorum", bound)
	}
	if err == nil || ctx.Err() != nil {
		t.Fatalf("the subscription ended with %v", err)
	}
	t.Logf("ended %v after the kills: %v", time.Since(killedAt).Round(time.Millisecond), err)

	c.start(first)
	c.start(second)
	testwait.For(t, "the log writable again", func() bool {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		defer acancel()
		_, err := writer.Append(actx, "s", eventstore.Any, storetest.Event(2))
		return err == nil
	})
	go func() { done <- sub.Subscribe(ctx, got.Load()+1, deliver) }()
	testwait.For(t, "the record appended after the restart", func() bool { return got.Load() >= 2 })
	select {
	case err := <-done:
		t.Fatalf("the new subscription ended: %v", err)
	default:
	}
}
