package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// TestRuleRequests checks method, path and body of every rule call, and
// that a rule's spec comes back byte for byte.
func TestRuleRequests(t *testing.T) {
	type seen struct{ method, path, body string }
	var got []seen
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, seen{r.Method, r.URL.EscapedPath(), string(b)})
		switch {
		case r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		case r.URL.Path == "/api/v1/rules" && r.Method == http.MethodGet:
			fmt.Fprint(w, `{"items":[{"id":"r1","spec":{"action":{"type":"rotate_topic"}},"status":"active","fires":2}]}`)
		case r.URL.Path == "/api/v1/rules/dry-run" || r.URL.Path == "/api/v1/rules/r1/dry-run":
			fmt.Fprint(w, `{"rule":"r1","trigger":"event","matched":true,"targets":["a/b"],"operations":[{"op":"new_topic","topic":"a/b"}]}`)
		default:
			fmt.Fprint(w, `{"id":"r1","spec":{"action":{"type":"rotate_topic"}},"status":"paused","reason":"why"}`)
		}
	}))
	ctx := context.Background()
	spec := json.RawMessage(`{"action":{"type":"rotate_topic"}}`)
	ev := json.RawMessage(`{"type":"topic.client_linked.v1"}`)
	r, err := c.CreateRule(ctx, spec)
	if err != nil || r.ID != "r1" || string(r.Spec) != string(spec) || r.Reason != "why" {
		t.Fatalf("CreateRule %+v %v", r, err)
	}
	rs, err := c.ListRules(ctx)
	if err != nil || len(rs) != 1 || rs[0].Fires != 2 {
		t.Fatalf("ListRules %+v %v", rs, err)
	}
	steps := []func() error{
		func() error { _, err := c.GetRule(ctx, "r1"); return err },
		func() error { _, err := c.UpdateRule(ctx, "r1", spec); return err },
		func() error { _, err := c.PauseRule(ctx, "r1", "why"); return err },
		func() error { _, err := c.PauseRule(ctx, "r1", ""); return err },
		func() error { _, err := c.ResumeRule(ctx, "r1"); return err },
		func() error { return c.DeleteRule(ctx, "r 1") },
	}
	for i, f := range steps {
		if err := f(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	p, err := c.DryRunSpec(ctx, spec, ev)
	if err != nil || p.Matched == nil || !*p.Matched || len(p.Operations) != 1 || p.Operations[0].Topic != "a/b" {
		t.Fatalf("DryRunSpec %+v %v", p, err)
	}
	if _, err := c.DryRunRule(ctx, "r1", nil); err != nil {
		t.Fatal(err)
	}
	want := []seen{
		{"POST", "/api/v1/rules", string(spec)},
		{"GET", "/api/v1/rules", ""},
		{"GET", "/api/v1/rules/r1", ""},
		{"PUT", "/api/v1/rules/r1", string(spec)},
		{"POST", "/api/v1/rules/r1/pause", `{"reason":"why"}`},
		{"POST", "/api/v1/rules/r1/pause", `{}`},
		{"POST", "/api/v1/rules/r1/resume", ""},
		{"DELETE", "/api/v1/rules/r%201", ""},
		{"POST", "/api/v1/rules/dry-run", `{"spec":` + string(spec) + `,"event":` + string(ev) + `}`},
		{"POST", "/api/v1/rules/r1/dry-run", `{}`},
	}
	if len(got) != len(want) {
		t.Fatalf("%d requests, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
