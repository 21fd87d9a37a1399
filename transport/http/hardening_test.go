package http

import (
	nethttp "net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// doFrom sends a GET from the given remote address.
func (h *harness) doFrom(addr, path, token string, hdr ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	req := httptest.NewRequest(nethttp.MethodGet, path, nil)
	req.RemoteAddr = addr
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.s.Handler().ServeHTTP(rec, req)
	return rec
}

// After AuthFailLimit invalid tokens in a window, the address gets 429 with
// Retry-After (even with a valid token: its token is not looked at) until
// the window passes; other addresses, missing tokens and successful
// requests are not affected, and X-Forwarded-For does not move the count.
func TestAuthFailuresThrottledPerAddress(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := newHarness(t, Config{AuthFailLimit: 10, AuthFailWindow: time.Minute, Now: clock})
	const bad, other = "198.51.100.7:4000", "198.51.100.8:4000"
	// Successful requests and missing tokens do not count.
	for range 20 {
		h.expect(h.doFrom(bad, "/api/v1/clients", h.reader), 200, "")
		h.expect(h.doFrom(bad, "/api/v1/clients", ""), 401, "missing_token")
	}
	for i := range 10 {
		// A forged X-Forwarded-For does not spread the count.
		h.expect(h.doFrom(bad, "/api/v1/clients", "wrong-token", "X-Forwarded-For", "203.0.113."+string(rune('0'+i))), 401, "invalid_token")
	}
	rec := h.doFrom(bad, "/api/v1/clients", "wrong-token")
	h.expect(rec, 429, "auth_rate_limited")
	if ra := rec.Header().Get("Retry-After"); ra != "60" {
		t.Fatalf("Retry-After %q", ra)
	}
	h.expect(h.doFrom(bad, "/api/v1/clients", h.reader), 429, "auth_rate_limited")
	// Public probes and other addresses are unaffected.
	h.expect(h.doFrom(bad, "/healthz", ""), 200, "")
	h.expect(h.doFrom(other, "/api/v1/clients", h.reader), 200, "")
	h.expect(h.doFrom(other, "/api/v1/clients", "wrong-token"), 401, "invalid_token")
	// When the window has passed, the address is served again.
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	h.expect(h.doFrom(bad, "/api/v1/clients", h.reader), 200, "")
	h.expect(h.doFrom(bad, "/api/v1/clients", "wrong-token"), 401, "invalid_token")
}

// The throttle is on by default (10 per minute) and can be turned off.
func TestAuthFailLimitDefaults(t *testing.T) {
	s, err := New(Config{}, newFake(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.authFails == nil || s.cfg.AuthFailLimit != 10 || s.cfg.AuthFailWindow != time.Minute {
		t.Fatalf("defaults: %+v", s.cfg)
	}
	s2, err := New(Config{AuthFailLimit: -1}, newFake(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.authFails != nil {
		t.Fatal("negative limit did not disable the throttle")
	}
}

// Every API response, errors included, carries the security headers;
// authenticated routes are never cached; HSTS only over TLS.
func TestSecurityHeaders(t *testing.T) {
	want := map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
		"Referrer-Policy":         "no-referrer",
	}
	h := newHarness(t, Config{})
	for _, tc := range []struct {
		path, token string
		status      int
		noStore     bool
	}{
		{"/api/v1/clients", h.reader, 200, true},
		{"/api/v1/clients", "", 401, true},
		{"/api/v1/clients", "wrong", 401, true},
		{"/api/v1/no-such-route", h.reader, 404, true},
		{"/api/v1/tokens", h.reader, 403, true},
		{"/healthz", "", 200, false},
	} {
		rec := h.do(get, tc.path, tc.token, nil)
		if rec.Code != tc.status {
			t.Fatalf("%s: status %d", tc.path, rec.Code)
		}
		for k, v := range want {
			if got := rec.Header().Get(k); got != v {
				t.Errorf("%s %d: %s = %q, want %q", tc.path, rec.Code, k, got, v)
			}
		}
		if tc.noStore && rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s %d: Cache-Control %q", tc.path, rec.Code, rec.Header().Get("Cache-Control"))
		}
		if rec.Header().Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS without TLS", tc.path)
		}
	}
	ht := newHarness(t, Config{TLS: true})
	if got := ht.do(get, "/api/v1/clients", ht.reader, nil).Header().Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Fatalf("HSTS over TLS = %q", got)
	}
}

// With DisableCryptoHelpers, protect and unprotect answer 403 with a
// stable code, for every role; the rest of the API is unchanged.
func TestCryptoHelpersDisabled(t *testing.T) {
	h := newHarness(t, Config{DisableCryptoHelpers: true})
	h.expect(h.do(post, "/api/v1/topics", h.oper, map[string]string{"topic": "t"}), 201, "")
	for _, tok := range []string{h.oper, h.admin} {
		h.expect(h.do(post, "/api/v1/topics/t/protect", tok, map[string][]byte{"payload": []byte("x")}), 403, "crypto_helpers_disabled")
		h.expect(h.do(post, "/api/v1/topics/t/unprotect", tok, map[string][]byte{"protected": []byte("0123456789abcdef0123456789abcdef0123456789")}), 403, "crypto_helpers_disabled")
	}
	// Still only for operators: a reader learns nothing about the switch.
	h.expect(h.do(post, "/api/v1/topics/t/protect", h.reader, map[string][]byte{"payload": []byte("x")}), 403, "forbidden")
	on := newHarness(t, Config{})
	on.expect(on.do(post, "/api/v1/topics", on.oper, map[string]string{"topic": "t"}), 201, "")
	on.expect(on.do(post, "/api/v1/topics/t/protect", on.oper, map[string][]byte{"payload": []byte("x")}), 200, "")
}
