package c2_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore/memstore"
	"github.com/e4c2/e4c2/eventstore/sealing"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/standard"
)

// testClock advances one second per call, so that every event has its own
// time (as-of replays by time) and commands stay inside the window.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock { return &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

// Advance moves the clock forward by d.
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

type env struct {
	svc    *c2.Service
	store  *memstore.Store
	sealer *sealing.Keyring
	suite  core.Suite
	clock  *testClock
	mode   core.Mode
}

func newEnv(t testing.TB, mode core.Mode) *env {
	t.Helper()
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
	e := &env{store: store, sealer: kr, suite: standard.New(), clock: newClock(), mode: mode}
	e.svc = e.open(t)
	return e
}

func (e *env) open(t testing.TB) *c2.Service {
	t.Helper()
	svc, err := c2.New(c2.Config{Store: e.store, Sealer: e.sealer, Suite: e.suite, Mode: e.mode, Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc
}

// rebuild replays the store into a fresh KeyState.
func (e *env) rebuild(t testing.TB, asOf projections.AsOf) projections.Snapshot {
	t.Helper()
	ks := projections.NewKeyState()
	if _, err := projections.Rebuild(context.Background(), e.store, asOf, ks, projections.NewAudit(0)); err != nil {
		t.Fatal(err)
	}
	return ks.Snapshot()
}

var sys = c2.Origin{Actor: "cli:test"}

// must(f())(t) fails the test on error and returns the value.
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func pendingOf(t testing.TB, svc *c2.Service, name string) []projections.Queued {
	t.Helper()
	return svc.PendingFor(domain.ClientID(name), 0)
}
