package jetstream

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/e4c2/e4c2/eventstore/storetest"
)

// TestReadsLeaveNoConsumers: a server that allows 5 consumers per stream
// serves 40 reads of a stream's history (each through an ordered
// consumer) and a subscription after them: every read deletes its
// consumer instead of leaving it for the server's inactivity threshold.
func TestReadsLeaveNoConsumers(t *testing.T) {
	o := &server.Options{ServerName: "consumers", Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true, JetStreamMaxMemory: 64 << 20, JetStreamMaxStore: 1 << 30}
	o.JetStreamLimits.DefaultMaxConsumers = 5
	srv, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(20 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Open(ctx, srv.ClientURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(ctx, "client-1", 0, storetest.Event(0), storetest.Event(1), storetest.Event(2)); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		recs, err := s.ReadStream(ctx, "client-1", 1)
		if err != nil || len(recs) != 3 {
			t.Fatalf("read %d: %d records, %v", i, len(recs), err)
		}
		if recs, err := s.ReadAll(ctx, 1, 10); err != nil || len(recs) != 3 {
			t.Fatalf("read all %d: %d records, %v", i, len(recs), err)
		}
	}
}
