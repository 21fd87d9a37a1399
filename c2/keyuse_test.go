package c2_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/eventcodec"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

// manualClock stands still until moved.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *manualClock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *manualClock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

func keyUses(t *testing.T, st eventstore.Store) map[string][]*domain.KeyUsed {
	t.Helper()
	recs, err := st.ReadStream(context.Background(), domain.KeyUseStream, 1)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]*domain.KeyUsed{}
	for _, r := range recs {
		ev, err := eventcodec.Decode(r.Type, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		out[r.Meta.Actor] = append(out[r.Meta.Actor], ev.(*domain.KeyUsed))
	}
	return out
}

func sum(evs []*domain.KeyUsed) (p, u, f uint64) {
	for _, e := range evs {
		p, u, f = p+e.Protects, u+e.Unprotects, f+e.Failures
	}
	return
}

// The protect/unprotect helpers are audited: the first use of a minute by
// a token is in the log before the helper answers, the rest of the
// minute's uses are counted and written once the minute is over (or at
// Close); the audit shows who used which topic key how often, in a few
// events whatever the number of messages, and never a payload.
func TestHelperKeyUseIsAudited(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, core.SymKey)
	must(e.svc.NewTopic(ctx, sys, "plant/x"))(t)
	clock := &manualClock{t: time.Date(2026, 3, 1, 10, 0, 5, 0, time.UTC)}
	svc, err := c2.New(c2.Config{Store: e.store, Sealer: e.sealer, Suite: e.suite, Mode: core.SymKey, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := c2.Origin{Actor: "token:alice"}, c2.Origin{Actor: "token:bob"}
	msg := must(svc.ProtectTopic(ctx, alice, "plant/x", []byte("secret payload")))(t)
	// The first use is on record at once.
	if got := keyUses(t, e.store); len(got["token:alice"]) != 1 || got["token:alice"][0].Protects != 1 {
		t.Fatalf("first use not recorded: %+v", got)
	}
	for range 99 {
		must(svc.ProtectTopic(ctx, alice, "plant/x", []byte("secret payload")))(t)
	}
	for range 30 {
		must(svc.UnprotectTopic(ctx, alice, "plant/x", msg))(t)
	}
	if _, err := svc.UnprotectTopic(ctx, alice, "plant/x", append([]byte{}, msg[:len(msg)-1]...)); err == nil {
		t.Fatal("a truncated message opened")
	}
	must(svc.UnprotectTopic(ctx, bob, "plant/x", msg))(t)
	if got := keyUses(t, e.store); len(got["token:alice"]) != 1 || len(got["token:bob"]) != 1 {
		t.Fatalf("uses within the minute were written one by one: %+v", got)
	}
	// The minute is over: Close (like the ticker) writes the counts.
	clock.Add(time.Minute)
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	got := keyUses(t, e.store)
	if p, u, f := sum(got["token:alice"]); p != 100 || u != 31 || f != 1 || len(got["token:alice"]) != 2 {
		t.Fatalf("alice: %d events, protect %d unprotect %d failed %d", len(got["token:alice"]), p, u, f)
	}
	if p, u, f := sum(got["token:bob"]); p != 0 || u != 1 || f != 0 || len(got["token:bob"]) != 1 {
		t.Fatalf("bob: %+v", got["token:bob"])
	}
	for _, evs := range got {
		for _, ev := range evs {
			if ev.Topic != domain.TopicHash("plant/x") || ev.KeyVersion != 1 || ev.Minute != uint64(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).Unix()) {
				t.Fatalf("event %+v", ev)
			}
		}
	}
	// The audit names actor, topic and counts.
	a := projections.NewAudit(0)
	if _, err := projections.Rebuild(ctx, e.store, projections.AsOf{}, projections.NewKeyState(), a); err != nil {
		t.Fatal(err)
	}
	entries, _ := a.Query(projections.AuditQuery{Actor: "token:alice", Type: "key.used.v1"})
	if len(entries) != 2 || entries[0].TopicName != "plant/x" || entries[1].Detail == "" {
		t.Fatalf("audit: %+v", entries)
	}
	t.Log(entries[1].Detail)
	// After Close the helpers refuse.
	if _, err := svc.ProtectTopic(ctx, alice, "plant/x", []byte("x")); err == nil {
		t.Fatal("protect after close")
	}
}
