package c2_test

import (
	"context"
	"testing"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

// TestStateAsOf: the state as of a time is the state the C2 had then; the
// live projections are not touched.
func TestStateAsOf(t *testing.T) {
	e := newEnv(t, core.SymKey)
	ctx := context.Background()
	if _, err := e.svc.NewTopic(ctx, sys, "t"); err != nil {
		t.Fatal(err)
	}
	then := e.clock.Now()
	if _, err := e.svc.RotateTopic(ctx, sys, "t"); err != nil {
		t.Fatal(err)
	}
	now, err := e.svc.Topic("t")
	if err != nil {
		t.Fatal(err)
	}
	ks, pos, err := e.svc.StateAsOf(ctx, projections.AsOf{Time: then})
	if err != nil {
		t.Fatal(err)
	}
	old, ok := ks.Topic(domain.TopicHash("t"))
	if !ok || old.KeyVersion >= now.KeyVersion || pos == 0 || pos >= e.svc.Position() {
		t.Fatalf("as of %v: topic %+v (found %v) at position %d; now version %d at %d", then, old, ok, pos, now.KeyVersion, e.svc.Position())
	}
	if cur, _ := e.svc.Topic("t"); cur.KeyVersion != now.KeyVersion {
		t.Fatal("a replay changed the live state")
	}
}
