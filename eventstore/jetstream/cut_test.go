package jetstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/storetest"
	"github.com/e4c2/e4c2/internal/testwait"
)

// cutProxy forwards TCP connections to a server and can cut them all at
// once, losing whatever was in flight in either direction.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	// frozen holds every byte in the proxy, both ways, without closing
	// anything: a connection that hangs (a peer gone without a reset).
	frozen atomic.Bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() { _ = ln.Close(); p.cut() })
	return p
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { p.copy(s, c); _ = s.Close() }()
		go func() { p.copy(c, s); _ = c.Close() }()
	}
}

// copy is io.Copy that holds the bytes it read while the proxy is frozen.
func (p *cutProxy) copy(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for p.frozen.Load() {
			time.Sleep(5 * time.Millisecond) // a hung link: poll until thawed
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
}

// TestConnectionCutDuringAppends cuts the client's connection again and
// again while several writers append (single events and batches): publishes
// and their answers are lost in flight, the client reconnects, and every
// acknowledged event must be in the log exactly once, in order, with no
// writer seeing a conflict with itself.
func TestConnectionCutDuringAppends(t *testing.T) {
	srv := startServer(t, "cut", t.TempDir(), 0, nil)
	t.Cleanup(srv.Shutdown)
	proxy := newCutProxy(t, srv.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Open(ctx, "nats://"+proxy.ln.Addr().String(), &Options{RequestTimeout: 500 * time.Millisecond,
		NATSOptions: []nats.Option{nats.IgnoreDiscoveredServers(), nats.ReconnectWait(20 * time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// A subscriber on the same connection lives through the cuts.
	var subMu sync.Mutex
	var subRecs []eventstore.Record
	subCtx, subCancel := context.WithCancel(ctx)
	defer subCancel()
	subDone := make(chan error, 1)
	go func() {
		subDone <- s.Subscribe(subCtx, 1, func(r eventstore.Record) error {
			subMu.Lock()
			subRecs = append(subRecs, r)
			subMu.Unlock()
			return nil
		})
	}()

	const writers, rounds, cuts = 4, 60, 12
	apps := make([]*appender, writers)
	var acked, finished atomic.Int64
	var wg sync.WaitGroup
	for w := range apps {
		apps[w] = &appender{own: fmt.Sprintf("own-%d", w)}
		wg.Add(1)
		go func(w int, a *appender) {
			defer wg.Done()
			defer finished.Add(1)
			var version uint64
			for r := 0; r < rounds; r++ {
				evs := make([]eventstore.EventData, 1+r%3)
				for i := range evs {
					evs[i] = storetest.Event(w*1000 + r*10 + i)
				}
				stream, expected := a.own, int64(version)
				if r%4 == 3 {
					stream, expected = "shared", eventstore.Any
				}
				v, err := s.Append(ctx, stream, expected, evs...)
				switch {
				case err == nil:
					for _, ev := range evs {
						a.acked = append(a.acked, ev.ID)
					}
					if stream == a.own {
						version = v
					}
					acked.Add(int64(len(evs)))
				case errors.Is(err, eventstore.ErrConflict):
					t.Errorf("writer %d: %v (a lost answer turned into a conflict with itself)", w, err)
					return
				default:
					a.failed++
					recs, rerr := s.ReadStream(ctx, a.own, 1)
					if rerr != nil {
						t.Errorf("writer %d: %v, then resync: %v", w, err, rerr)
						return
					}
					version = uint64(len(recs))
				}
			}
		}(w, apps[w])
	}
	for i := 0; i < cuts; i++ {
		target := acked.Load() + 15
		testwait.For(t, "appends between cuts", func() bool {
			return acked.Load() >= target || finished.Load() == writers || t.Failed()
		})
		proxy.cut()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	total, failed := 0, 0
	for _, a := range apps {
		total += len(a.acked)
		failed += a.failed
	}
	all := checkKillLog(t, ctx, s, apps)
	t.Logf("%d cuts: %d acknowledged events, %d failed appends, %d appends found stored after a lost answer, log of %d events",
		cuts, total, failed, s.recovered.Load(), len(all))
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
			t.Fatalf("subscriber record %d: position %d, log has %d", i, subRecs[i].Position, all[i].Position)
		}
	}
}
