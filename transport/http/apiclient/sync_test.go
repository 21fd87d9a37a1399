package apiclient

import (
	"context"
	"fmt"
	"net/http"
	"testing"
)

// TestSyncCalls checks the paths and queries of the sync calls and that
// GetClientJSON hands the server's bytes over unchanged.
func TestSyncCalls(t *testing.T) {
	const body = `{"id":"00","topics":1,"pending":0,"sync":{"status":"in_sync","evidence":"accepted","seen":true,"pending":0,"identity":{"desired":1,"accepted":1,"confirmed":1},"topics":[{"topic":"a/b","hash":"ff","desired":3,"accepted":3,"confirmed":0}],"extra":true}}`
	var calls []string
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls = append(calls, r.Method+" "+r.URL.EscapedPath()+"?"+r.URL.RawQuery)
		switch r.URL.Path {
		case "/api/v1/clients/dev%2F1", "/api/v1/clients/dev/1":
			fmt.Fprint(w, body)
		case "/api/v1/fleet":
			fmt.Fprint(w, `{"clients":3,"in_sync":1,"lagging":1,"never_seen":1,"pending":4}`)
		default:
			fmt.Fprint(w, `{"queued":2}`)
		}
	}))
	ctx := context.Background()
	raw, err := c.GetClientJSON(ctx, "dev/1")
	if err != nil || string(raw) != body {
		t.Fatalf("raw JSON %q, %v", raw, err)
	}
	cl, err := c.GetClient(ctx, "dev/1")
	if err != nil || cl.Sync == nil || cl.Sync.Evidence != "accepted" || cl.Sync.Topics[0].Desired != 3 || cl.Sync.Topics[0].Confirmed != 0 {
		t.Fatalf("client %+v, %v", cl, err)
	}
	f, err := c.Fleet(ctx)
	if err != nil || f != (FleetSummary{Clients: 3, InSync: 1, Lagging: 1, NeverSeen: 1, Pending: 4}) {
		t.Fatalf("fleet %+v, %v", f, err)
	}
	if r, err := c.Resync(ctx, "dev/1", true); err != nil || r.Queued != 2 {
		t.Fatalf("resync %+v, %v", r, err)
	}
	if _, err := c.ResyncAll(ctx, false); err != nil {
		t.Fatal(err)
	}
	want := []string{"GET /api/v1/clients/dev%2F1?", "GET /api/v1/clients/dev%2F1?", "GET /api/v1/fleet?",
		"POST /api/v1/clients/dev%2F1/resync?full=true", "POST /api/v1/resync?full=false"}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("calls %q\nwant  %q", calls, want)
	}
}
