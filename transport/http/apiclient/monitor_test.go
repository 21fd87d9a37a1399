package apiclient

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestFindingsAndMonitorRequests checks the query Findings sends (only the
// filters set, the time in RFC 3339) and the decoding of both answers.
func TestFindingsAndMonitorRequests(t *testing.T) {
	var queries []string
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/findings":
			queries = append(queries, r.URL.RawQuery)
			fmt.Fprint(w, `{"items":[{"position":7,"time":"2026-01-01T00:00:00Z","kind":"old_key","topic":"a/b","client":"dev","key_version":1,"window_start":"2026-01-01T00:00:00Z","window_end":"2026-01-01T00:01:00Z","count":3}],"monitor_enabled":true}`)
		case "/api/v1/monitor":
			fmt.Fprint(w, `{"enabled":true,"queue":{"size":10,"used":2},"counts":{"offered":5,"classified":3,"dropped":2,"sampling":true,"unmanaged":0,"findings_recorded":1,"record_errors":0},"topics":[{"topic":"a/b","messages":3,"bytes":90,"rate":0.3,"spikes":0,"drops":0,"classes":{"old_key":3},"shares":{"old_key":1}}]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	ctx := context.Background()
	l, err := c.Findings(ctx, FindingQuery{})
	if err != nil || !l.MonitorEnabled || len(l.Items) != 1 || l.Items[0].Kind != "old_key" || l.Items[0].Count != 3 {
		t.Fatalf("Findings = %+v, %v", l, err)
	}
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if _, err := c.Findings(ctx, FindingQuery{Topic: "a/b", Client: "dev", Kind: "old_key", Since: since, Limit: 5}); err != nil {
		t.Fatal(err)
	}
	want := []string{"", "client=dev&kind=old_key&limit=5&since=2026-01-02T03%3A04%3A05Z&topic=a%2Fb"}
	if fmt.Sprint(queries) != fmt.Sprint(want) {
		t.Fatalf("queries %q, want %q", queries, want)
	}
	st, err := c.MonitorStatus(ctx)
	if err != nil || !st.Enabled || st.Queue.Used != 2 || !st.Counts.Sampling || st.Topics[0].Shares["old_key"] != 1 {
		t.Fatalf("MonitorStatus = %+v, %v", st, err)
	}
}
