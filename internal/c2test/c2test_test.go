package c2test

import (
	"context"
	"testing"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/suites/core"
)

// The service works and its events land in the returned store.
func TestService(t *testing.T) {
	for _, mode := range []core.Mode{core.SymKey, core.PubKey} {
		t.Run(mode.String(), func(t *testing.T) {
			svc, store := Service(t, mode)
			if svc.Mode() != mode {
				t.Fatalf("mode %v, want %v", svc.Mode(), mode)
			}
			ctx := context.Background()
			if _, err := svc.NewTopic(ctx, c2.Origin{Actor: "test"}, "t/1"); err != nil {
				t.Fatal(err)
			}
			recs, err := store.ReadAll(ctx, 1, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) == 0 {
				t.Fatal("the service's events are not in the returned store")
			}
		})
	}
}
