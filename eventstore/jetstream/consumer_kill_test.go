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

	// The subscription's consumer is the only one on the stream.
	var host string
	lister := sub.log.ListConsumers(ctx)
	for info := range lister.Info() {
		if info.Cluster != nil {
			host = info.Cluster.Leader
		}
	}
	killed := c.index(host)
	if killed < 0 {
		t.Fatalf("consumer host %q is not a running node", host)
	}
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
