package server

import (
	"context"
	nethttp "net/http"
	"net/http/httptest"
	"testing"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/c2test"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/suites/core"
	httpapi "github.com/e4c2/e4c2/transport/http"
)

// apiFor builds the API the server would serve with cfg, over a fresh
// service with one reader token.
func apiFor(t *testing.T, cfg config.Config) (nethttp.Handler, string) {
	t.Helper()
	ctx := context.Background()
	svc, _ := c2test.Service(t, core.SymKey)
	secret, _, err := svc.CreateToken(ctx, c2.Origin{Actor: "test"}, "viewer", domain.TokenReader)
	if err != nil {
		t.Fatal(err)
	}
	hc := apiConfig(cfg)
	hc.Metrics = nethttp.HandlerFunc(func(w nethttp.ResponseWriter, _ *nethttp.Request) { _, _ = w.Write([]byte("up 1\n")) })
	api, err := httpapi.New(hc, httpapi.NewServiceBackend(svc), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	return api.Handler(), secret
}

func getStatus(h nethttp.Handler, path, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(nethttp.MethodGet, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// --metrics-auth reaches the API: /metrics then needs a token (it was
// always public, whatever the configuration); without it, it stays
// public. TLS turns HSTS on.
func TestMetricsAuthConfigured(t *testing.T) {
	h, reader := apiFor(t, config.Config{MetricsAuth: true})
	if rec := getStatus(h, "/metrics", ""); rec.Code != nethttp.StatusUnauthorized {
		t.Fatalf("metrics without a token: %d", rec.Code)
	}
	if rec := getStatus(h, "/metrics", reader); rec.Code != nethttp.StatusOK {
		t.Fatalf("metrics with a reader token: %d", rec.Code)
	}
	open, _ := apiFor(t, config.Config{TLSCertFile: "c.pem", TLSKeyFile: "k.pem"})
	rec := getStatus(open, "/metrics", "")
	if rec.Code != nethttp.StatusOK {
		t.Fatalf("public metrics: %d", rec.Code)
	}
	if rec.Header().Get("Strict-Transport-Security") == "" {
		t.Fatal("no HSTS with TLS configured")
	}
}
