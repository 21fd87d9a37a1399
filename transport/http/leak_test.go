package http

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// keyForms returns every textual form a key could take in a response.
func keyForms(k []byte) [][]byte {
	return [][]byte{
		[]byte(hex.EncodeToString(k)),
		[]byte(strings.ToUpper(hex.EncodeToString(k))),
		[]byte(base64.StdEncoding.EncodeToString(k)),
		[]byte(base64.RawStdEncoding.EncodeToString(k)),
		[]byte(base64.URLEncoding.EncodeToString(k)),
		[]byte(base64.RawURLEncoding.EncodeToString(k)),
		k,
	}
}

// allowedToCarryKeys says which exchanges may hold key material: the admin
// key export and the one-time token secret (tokens are not keys, but the
// rule names both).
func allowedToCarryKeys(e exchange) bool {
	return e.method == post && (strings.HasPrefix(e.path, "/api/v1/export/") || e.path == "/api/v1/tokens")
}

// scanForKeys fails if any response other than the allowed ones holds any
// of keys, and returns how many allowed responses did (the positive
// control: the scan must be able to see a key).
func scanForKeys(t testing.TB, exchanges []exchange, keys [][]byte, logs string) int {
	t.Helper()
	if len(keys) == 0 {
		t.Fatal("no keys to scan for")
	}
	seenInAllowed := 0
	for _, e := range exchanges {
		for _, k := range keys {
			for _, form := range keyForms(k) {
				if !bytes.Contains(e.body, form) {
					continue
				}
				if allowedToCarryKeys(e) {
					seenInAllowed++
					continue
				}
				t.Errorf("key material in response to %s %s (status %d)", e.method, e.path, e.status)
			}
			if logs != "" && (strings.Contains(logs, hex.EncodeToString(k)) || strings.Contains(logs, base64.StdEncoding.EncodeToString(k))) {
				t.Errorf("key material in the logs")
			}
		}
	}
	return seenInAllowed
}

// TestNoKeyLeaks runs a full scenario and scans every response body.
func TestNoKeyLeaks(t *testing.T) {
	h := newHarness(t, Config{DefaultPageSize: 2})
	runScenario(t, h)
	if n := scanForKeys(t, h.exchanges, h.f.keys(), h.logs.String()); n == 0 {
		t.Fatal("the export responses did not show any key: the scan cannot be trusted")
	}
	for _, secret := range []string{h.admin, h.oper, h.reader} {
		if strings.Contains(h.logs.String(), secret) {
			t.Fatal("token secret in the logs")
		}
	}
}

// runScenario exercises every route once or more, successes and failures.
func runScenario(t *testing.T, h *harness) {
	t.Helper()
	a, o, r := h.admin, h.oper, h.reader
	steps := []struct {
		method, path, token string
		body                any
	}{
		{post, "/api/v1/clients", o, map[string]string{"name": "dev-a", "key": key32}},
		{post, "/api/v1/clients", o, map[string]string{"name": "dev-b", "key": strings.Repeat("ab", 32)}},
		{post, "/api/v1/clients", o, map[string]string{"name": "dev-c", "key": strings.Repeat("cd", 32), "role": "publisher"}},
		{post, "/api/v1/clients", o, map[string]string{"name": "bad", "key": "00"}},
		{post, "/api/v1/topics", o, map[string]string{"topic": "room/1"}},
		{post, "/api/v1/topics", o, map[string]string{"topic": "room/2"}},
		{post, "/api/v1/topics", o, map[string]string{"topic": "room/1"}},
		{put, "/api/v1/clients/dev-a/topics/room%2F1", o, nil},
		{post, "/api/v1/batch/attach", o, map[string]any{"topic": "room/2", "clients": []string{"dev-a", "dev-b", "nope"}}},
		{get, "/api/v1/clients", r, nil},
		{get, "/api/v1/clients?limit=1", r, nil},
		{get, "/api/v1/clients/dev-a", r, nil},
		{get, "/api/v1/clients/dev-a/topics", r, nil},
		{get, "/api/v1/topics", r, nil},
		{get, "/api/v1/topics/room%2F1", r, nil},
		{get, "/api/v1/topics/room%2F1/clients", r, nil},
		{get, "/api/v1/count/clients", r, nil},
		{get, "/api/v1/count/topics", r, nil},
		{post, "/api/v1/topics/room%2F1/protect", o, map[string][]byte{"payload": []byte("temperature=21")}},
		{post, "/api/v1/clients/dev-b/key", o, nil},
		{post, "/api/v1/clients/dev-c/reset", o, nil},
		{post, "/api/v1/batch/reset", o, map[string]any{"clients": []string{"dev-c", "ghost"}}},
		{post, "/api/v1/clients/dev-a/pubkeys/reset", o, nil},
		{put, "/api/v1/clients/dev-a/pubkeys/dev-b", o, nil},
		{del, "/api/v1/clients/dev-a/pubkeys/dev-b", o, nil},
		{post, "/api/v1/c2key", o, nil},
		{get, "/api/v1/audit", r, nil},
		{get, "/api/v1/audit?client=dev-a", r, nil},
		{get, "/api/v1/deliveries", r, nil},
		{post, "/api/v1/tokens", a, map[string]string{"name": "auditor", "role": "reader"}},
		{get, "/api/v1/tokens", a, nil},
		{post, "/api/v1/export/clients/dev-a", a, nil},
		{post, "/api/v1/export/topics/room%2F2", a, nil},
		{get, "/openapi.json", r, nil},
		{del, "/api/v1/clients/dev-a/topics/room%2F1", o, nil},
		{del, "/api/v1/topics/room%2F2", o, nil},
		{del, "/api/v1/clients/dev-c", o, nil},
		{del, "/api/v1/tokens/auditor", a, nil},
		{get, "/api/v1/clients/dev-c", r, nil},
	}
	for _, s := range steps {
		rec := h.do(s.method, s.path, s.token, s.body)
		if rec.Code >= 500 {
			t.Fatalf("%s %s: %d %s", s.method, s.path, rec.Code, rec.Body.String())
		}
	}
	// The event stream, read once to its current end.
	h.exchanges = append(h.exchanges, readEventsOnce(t, h))
}

// readEventsOnce reads the SSE stream for a moment and returns it as an
// exchange; it checks the catch-up reached the last event.
func readEventsOnce(t *testing.T, h *harness) exchange {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, get, "/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+h.reader)
	rec := httptest.NewRecorder()
	h.s.Handler().ServeHTTP(rec, req)
	h.f.mu.Lock()
	last := len(h.f.events)
	h.f.mu.Unlock()
	if last == 0 || !strings.Contains(rec.Body.String(), fmt.Sprintf("id: %d\n", last)) {
		t.Fatalf("event stream did not reach event %d", last)
	}
	return exchange{method: get, path: "/api/v1/events", status: rec.Code, body: rec.Body.Bytes()}
}

// errRecorder is a testing.TB that records failures instead of failing.
type errRecorder struct {
	testing.TB
	errors int
}

func (e *errRecorder) Helper()               {}
func (e *errRecorder) Errorf(string, ...any) { e.errors++ }
func (e *errRecorder) Fatal(...any)          { e.errors++ }

// TestScanForKeysDetects proves the scan fails on a leak in every encoding.
func TestScanForKeysDetects(t *testing.T) {
	k := bytes.Repeat([]byte{0xa5, 0x17}, 16)
	for i, form := range keyForms(k) {
		rec := &errRecorder{TB: t}
		ex := []exchange{{method: get, path: "/api/v1/clients", body: append([]byte(`{"x":"`), append(form, '"', '}')...)}}
		scanForKeys(rec, ex, [][]byte{k}, "")
		if rec.errors == 0 {
			t.Fatalf("form %d not detected", i)
		}
		rec = &errRecorder{TB: t}
		ex[0].method, ex[0].path = post, "/api/v1/export/clients/a"
		if n := scanForKeys(rec, ex, [][]byte{k}, ""); n == 0 || rec.errors != 0 {
			t.Fatalf("form %d: allowed export not counted (%d) or flagged (%d)", i, n, rec.errors)
		}
	}
}
