package http

import (
	"context"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/c2test"
	"github.com/e4c2/e4c2/monitor"
	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/transport/http/apitypes"
)

// leakedText is the plaintext a device leaks in the tests: no answer may
// carry it (findings never hold a payload).
const leakedText = `{"valve":"open","secret":"hunter2"}`

// findingsEnv is the API over the real service with a real monitor that
// classified three messages (current and plaintext from dev-a on
// plant/line-1, a forged one without a publisher on plant/line-2) and
// recorded its findings as it does when a window closes.
func findingsEnv(t *testing.T, withMonitor bool) (*realEnv, domain.ID) {
	t.Helper()
	svc, store := c2test.Service(t, core.SymKey)
	m, err := monitor.New(monitor.Config{Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{}
	if withMonitor {
		cfg.Monitor = m
	}
	h := newHarnessWith(t, cfg, NewServiceBackend(svc))
	h.issueTokens(t, svc)
	e := &realEnv{harness: h, svc: svc, keys: map[string][]byte{}}

	e.expect(e.do(post, "/api/v1/clients", e.oper, map[string]string{"name": "dev-a", "key": randKey(t)}), 201, "")
	for _, topic := range []string{"plant/line-1", "plant/line-2"} {
		e.expect(e.do(post, "/api/v1/topics", e.oper, map[string]string{"topic": topic}), 201, "")
	}
	rec := e.do(post, "/api/v1/topics/"+url.PathEscape("plant/line-1")+"/protect", e.oper,
		map[string]string{"payload": base64.StdEncoding.EncodeToString([]byte("21.5 C"))})
	e.expect(rec, 200, "")
	protected := decode[apitypes.ProtectResponse](t, rec).Protected
	e.snapKeys(t)

	dev := domain.ID(core.HashID([]byte("dev-a")))
	forged := make([]byte, 64) // NUL bytes: not text; no key opens it
	for i, msg := range []monitor.Message{
		{Topic: "plant/line-1", Payload: protected, Client: dev, HasClient: true},
		{Topic: "plant/line-1", Payload: []byte(leakedText), Client: dev, HasClient: true},
		{Topic: "plant/line-2", Payload: forged},
	} {
		want := []monitor.Class{monitor.ClassCurrent, monitor.ClassPlaintext, monitor.ClassForged}[i]
		if v := m.Process(msg); v.Class != want {
			t.Fatalf("message %d classified %s, want %s", i, v.Class, want)
		}
	}
	ctx := context.Background()
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	recs, err := store.ReadStream(ctx, domain.MonitorStream, 1)
	if err != nil || len(recs) != 2 {
		t.Fatalf("monitor stream: %d records, %v", len(recs), err)
	}
	if err := svc.WaitPosition(ctx, recs[len(recs)-1].Position); err != nil {
		t.Fatal(err)
	}
	return e, dev
}

func (e *realEnv) findings(t *testing.T, query string) apitypes.FindingList {
	t.Helper()
	rec := e.do(get, "/api/v1/findings"+query, e.reader, nil)
	e.expect(rec, 200, "")
	return decode[apitypes.FindingList](t, rec)
}

func kinds(l apitypes.FindingList) string {
	var ks []string
	for _, f := range l.Items {
		ks = append(ks, f.Kind)
	}
	return strings.Join(ks, ",")
}

// TestFindingsAPI: GET /findings lists what the monitor recorded, newest
// first, with every filter; bad parameters are 400 with a clear code; a
// reader may read them, nobody without a token; no answer carries the
// leaked plaintext or a key.
func TestFindingsAPI(t *testing.T) {
	e, dev := findingsEnv(t, true)

	all := e.findings(t, "")
	if !all.MonitorEnabled || len(all.Items) != 2 || all.Items[0].Position <= all.Items[1].Position {
		t.Fatalf("all findings: %+v", all)
	}
	var plain apitypes.Finding
	for _, f := range all.Items {
		if f.Kind == "plaintext" {
			plain = f
		}
	}
	if plain.Topic != "plant/line-1" || plain.Client != "dev-a" || plain.ClientID != dev.String() || plain.Count != 1 ||
		plain.TopicHash != domain.TopicHash("plant/line-1").String() || plain.WindowStart.IsZero() || plain.WindowEnd.Before(plain.WindowStart) {
		t.Fatalf("plaintext finding: %+v", plain)
	}

	for query, want := range map[string]string{
		"?topic=" + url.QueryEscape("plant/line-1"): "plaintext",
		"?topic=" + url.QueryEscape("plant/line-2"): "forged",
		"?topic=nothing":          "",
		"?client=dev-a":           "plaintext",
		"?client=" + dev.String(): "plaintext",
		"?client=nobody":          "",
		"?kind=forged":            "forged",
		"?kind=replay":            "",
		"?kind=plaintext&topic=" + url.QueryEscape("plant/line-2"):                   "",
		"?since=" + url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339)): all.Items[0].Kind + "," + all.Items[1].Kind,
		"?since=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)):  "",
		"?limit=1": all.Items[0].Kind,
	} {
		if got := kinds(e.findings(t, query)); got != want {
			t.Errorf("findings%s = %q, want %q", query, got, want)
		}
	}

	for query, code := range map[string]string{
		"?kind=bogus":                         "invalid_kind",
		"?since=yesterday":                    "invalid_time",
		"?since=2026-01-01":                   "invalid_time",
		"?limit=0":                            "invalid_limit",
		"?limit=-3":                           "invalid_limit",
		"?limit=1001":                         "invalid_limit",
		"?limit=ten":                          "invalid_limit",
		"?topic=plant%2F%2B":                  "invalid_topic",
		"?client=" + strings.Repeat("x", 300): "invalid_name",
	} {
		e.expect(e.do(get, "/api/v1/findings"+query, e.reader, nil), 400, code)
	}
	e.expect(e.do(get, "/api/v1/findings", "", nil), 401, "")
	e.expect(e.do(get, "/api/v1/monitor", "", nil), 401, "")
	e.expect(e.do(get, "/api/v1/findings", e.admin, nil), 200, "")

	for _, x := range e.exchanges {
		if strings.Contains(string(x.body), "hunter2") {
			t.Fatalf("%s %s answered the leaked plaintext: %s", x.method, x.path, x.body)
		}
	}
	scanForKeys(t, e.exchanges, e.keyList(), e.logs.String())
}

// TestMonitorStatusAPI: GET /monitor shows this instance's counters, class
// shares and publishers; with the monitor off it is {"enabled": false},
// and GET /findings still lists the findings in the log.
func TestMonitorStatusAPI(t *testing.T) {
	e, dev := findingsEnv(t, true)
	rec := e.do(get, "/api/v1/monitor", e.reader, nil)
	e.expect(rec, 200, "")
	st := decode[apitypes.MonitorStatus](t, rec)
	if !st.Enabled || st.Queue == nil || st.Queue.Size == 0 || st.Counts == nil || st.Counts.Classified != 3 ||
		st.Counts.Findings != 2 || st.Counts.Sampling {
		t.Fatalf("status: %+v", st)
	}
	var line1 *apitypes.MonitorTopic
	for i := range st.Topics {
		if st.Topics[i].Topic == "plant/line-1" {
			line1 = &st.Topics[i]
		}
	}
	if line1 == nil || line1.Messages != 2 || line1.Classes["plaintext"] != 1 || line1.Shares["plaintext"] != 0.5 || line1.Shares["current"] != 0.5 {
		t.Fatalf("plant/line-1: %+v", line1)
	}
	if len(st.Clients) != 1 || st.Clients[0].ClientID != dev.String() || st.Clients[0].Client != "dev-a" || st.Clients[0].Messages != 2 {
		t.Fatalf("clients: %+v", st.Clients)
	}
	if strings.Contains(rec.Body.String(), "hunter2") {
		t.Fatal("the status carries the leaked plaintext")
	}
	scanForKeys(t, e.exchanges, e.keyList(), e.logs.String())

	off, _ := findingsEnv(t, false)
	rec = off.do(get, "/api/v1/monitor", off.reader, nil)
	off.expect(rec, 200, "")
	if got := strings.TrimSpace(rec.Body.String()); got != `{"enabled":false}` {
		t.Fatalf("monitor off: %s", got)
	}
	if l := off.findings(t, ""); l.MonitorEnabled || len(l.Items) != 2 {
		t.Fatalf("findings with the monitor off: %+v", l)
	}
}

// TestFindingsUnavailable: a backend without findings answers 501.
func TestFindingsUnavailable(t *testing.T) {
	h := newHarness(t, Config{})
	h.expect(h.do(get, "/api/v1/findings", h.reader, nil), 501, "findings_unavailable")
	h.expect(h.do(get, "/api/v1/findings?kind=bogus", h.reader, nil), 400, "invalid_kind")
	rec := h.do(get, "/api/v1/monitor", h.reader, nil)
	h.expect(rec, 200, "")
	if !strings.Contains(rec.Body.String(), `"enabled":false`) {
		t.Fatalf("monitor: %s", rec.Body.String())
	}
}
