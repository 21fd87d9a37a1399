package c2

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore/memstore"
	"github.com/e4c2/e4c2/eventstore/sealing"
	"github.com/e4c2/e4c2/internal/eventcodec"
	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/standard"
)

// Concurrent helper calls across minute boundaries, with flushes racing
// them, lose no use and count none twice.
func TestKeyUseConcurrentCounts(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	master, err := sealing.MasterKeyFromBytes(bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		t.Fatal(err)
	}
	kr, err := sealing.OpenKeyring(ctx, store, master)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	svc, err := New(Config{Store: store, Sealer: kr, Suite: standard.New(), Mode: core.SymKey, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.NewTopic(ctx, Origin{}, "t"); err != nil {
		t.Fatal(err)
	}
	const workers, calls = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := Origin{Actor: []string{"token:a", "token:b"}[w%2]}
			for range calls {
				if _, err := svc.ProtectTopic(ctx, o, "t", []byte("x")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			now = now.Add(7 * time.Second)
			mu.Unlock()
			svc.flushKeyUse(false)
		}
	}()
	wg.Wait()
	close(stop)
	<-done
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	recs, err := store.ReadStream(ctx, domain.KeyUseStream, 1)
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, r := range recs {
		ev, err := eventcodec.Decode(r.Type, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		total += ev.(*domain.KeyUsed).Protects
	}
	if total != workers*calls {
		t.Fatalf("counted %d uses in %d events, want %d", total, len(recs), workers*calls)
	}
}
