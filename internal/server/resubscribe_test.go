package server_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	nethttp "net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/server"
	"github.com/e4c2/e4c2/internal/testwait"
)

var errDropped = errors.New("test: subscription dropped by the store")

// droppingStore ends every live subscription with errDropped on demand
// and refuses new ones until allowed again, as a store whose server is
// gone for longer than its own retries does.
type droppingStore struct {
	eventstore.Store
	mu     sync.Mutex
	drop   chan struct{}
	refuse bool
}

// The keyring stays the wrapped store's.
func (s *droppingStore) LoadKeyring(ctx context.Context) ([]byte, error) {
	return s.Store.(eventstore.KeyringStorage).LoadKeyring(ctx)
}

func (s *droppingStore) SaveKeyring(ctx context.Context, k []byte) error {
	return s.Store.(eventstore.KeyringStorage).SaveKeyring(ctx, k)
}

func (s *droppingStore) dropAll(refuse bool) {
	s.mu.Lock()
	close(s.drop)
	s.drop, s.refuse = make(chan struct{}), refuse
	s.mu.Unlock()
}

func (s *droppingStore) allow() {
	s.mu.Lock()
	s.refuse = false
	s.mu.Unlock()
}

func (s *droppingStore) Subscribe(ctx context.Context, from uint64, fn func(eventstore.Record) error) error {
	s.mu.Lock()
	drop, refuse := s.drop, s.refuse
	s.mu.Unlock()
	if refuse {
		return errDropped
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-drop:
			cancel()
		case <-sctx.Done():
		}
	}()
	err := s.Store.Subscribe(sctx, from, fn)
	if ctx.Err() == nil && errors.Is(err, context.Canceled) {
		return errDropped
	}
	return err
}

// TestDroppedSubscriptionReadyz: when the store drops the subscriptions of
// the read models and the automation engine and refuses new ones, /readyz
// fails and the metrics say so; once the store serves them again, both
// follow the log again (a new topic shows) and /readyz is ready.
func TestDroppedSubscriptionReadyz(t *testing.T) {
	var ds *droppingStore
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTPListen, cfg.MQTTListen = "127.0.0.1:0", "127.0.0.1:0"
	var out bytes.Buffer
	srv, err := server.Start(context.Background(), cfg, server.Options{Out: &out, Logger: slog.New(slog.DiscardHandler),
		WrapStore: func(st eventstore.Store) eventstore.Store {
			ds = &droppingStore{Store: st, drop: make(chan struct{})}
			return ds
		}})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	token := strings.TrimSpace(lines[len(lines)-1])
	do := func(method, path string, body any) (int, string) {
		return apiRequest(t, srv.HTTPAddr(), token, method, path, body)
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		testwait.For(t, what, cond)
	}
	metric := func(name string) string {
		_, body := do("GET", "/metrics", nil)
		for _, l := range strings.Split(body, "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == name {
				return f[1]
			}
		}
		return ""
	}
	wait("ready", func() bool { st, _ := do("GET", "/readyz", nil); return st == nethttp.StatusOK })

	ds.dropAll(true)
	wait("/readyz to fail", func() bool {
		st, body := do("GET", "/readyz", nil)
		return st == nethttp.StatusServiceUnavailable && strings.Contains(body, "not_ready")
	})
	wait("the metrics to show the drop", func() bool {
		return metric("e4c2_log_following") == "0" && metric("e4c2_automation_running") == "0"
	})
	if d := metric("e4c2_log_subscription_drops_total"); d == "" || d == "0" {
		t.Fatalf("e4c2_log_subscription_drops_total = %q after a drop", d)
	}

	ds.allow()
	// A write needs the read models to follow the log again.
	wait("a topic created after the store came back", func() bool {
		st, _ := do("POST", "/api/v1/topics", map[string]string{"topic": "back/again"})
		return st == nethttp.StatusCreated
	})
	wait("/readyz ready again", func() bool { st, _ := do("GET", "/readyz", nil); return st == nethttp.StatusOK })
	wait("the metrics to recover", func() bool {
		return metric("e4c2_log_following") == "1" && metric("e4c2_automation_running") == "1"
	})
	if r := metric("e4c2_automation_restarts_total"); r == "" || r == "0" {
		t.Fatalf("e4c2_automation_restarts_total = %q after the engine stopped", r)
	}
}
