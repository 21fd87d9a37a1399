package c2_test

import (
	"context"
	"testing"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/suites/core"
)

func TestSearchClients(t *testing.T) {
	e := newEnv(t, core.SymKey)
	ctx := context.Background()
	for _, n := range []string{"Alpha-1", "beta-2", "alpha-3", "gamma"} {
		if _, err := e.svc.NewClient(ctx, sys, c2.ByName(n), make([]byte, 32), domain.RoleBoth); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.RemoveClient(ctx, sys, c2.ByName("alpha-3"), false); err != nil {
		t.Fatal(err)
	}
	names := func(query, cursor string, limit int) ([]string, string) {
		t.Helper()
		cs, next, err := e.svc.SearchClients(query, cursor, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cs {
			out = append(out, c.Name)
		}
		return out, next
	}
	if got, _ := names("ALPHA", "", 10); len(got) != 1 || got[0] != "Alpha-1" {
		t.Fatalf("search ALPHA = %v, want [Alpha-1] (case-insensitive, removed clients left out)", got)
	}
	if got, _ := names("a-", "", 10); len(got) != 2 || got[0] != "Alpha-1" || got[1] != "beta-2" {
		t.Fatalf("search a- = %v", got)
	}
	first, next := names("a", "", 1)
	if len(first) != 1 || next == "" {
		t.Fatalf("first page %v, next %q", first, next)
	}
	var all []string
	for cursor := ""; ; {
		page, n := names("a", cursor, 1)
		all = append(all, page...)
		if n == "" {
			break
		}
		cursor = n
	}
	if len(all) != 3 {
		t.Fatalf("paged search found %v, want Alpha-1 beta-2 gamma", all)
	}
	id := domain.ClientID("gamma").String()
	if got, _ := names(id[:6], "", 10); len(got) != 1 || got[0] != "gamma" {
		t.Fatalf("search by id prefix %s = %v", id[:6], got)
	}
	if _, _, err := e.svc.SearchClients("a", "x", 10); err == nil {
		t.Fatal("a bad cursor was accepted")
	}
}
