package http

import (
	"net/http/httptest"
	"testing"
)

// The API's own overhead: a public route (baseline: routing, request id,
// logging) against an authenticated read (plus token lookup, constant-time
// hash check, rate limiter, role check, JSON encoding).
func benchRoute(b *testing.B, path string, auth bool) {
	h := newHarness(b, Config{RateLimit: 1e9})
	h.do(post, "/api/v1/clients", h.oper, map[string]string{"name": "dev", "key": key32})
	handler := h.s.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(get, path, nil)
		if auth {
			req.Header.Set("Authorization", "Bearer "+h.reader)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

func BenchmarkHealthz(b *testing.B)   { benchRoute(b, "/healthz", false) }
func BenchmarkGetClient(b *testing.B) { benchRoute(b, "/api/v1/clients/dev", true) }
