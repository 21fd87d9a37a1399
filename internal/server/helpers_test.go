package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	nethttp "net/http"
	"testing"
	"time"

	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/server"
)

// testConfig is the default configuration of a whole C2 in a fresh
// temporary data directory, listening on free local ports.
func testConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTPListen, cfg.MQTTListen = "127.0.0.1:0", "127.0.0.1:0"
	return cfg
}

// tryStart starts a whole C2 with cfg and opts (Out and Logger default to
// discarding), for the tests whose start may fail. A server that starts
// is shut down at the end of the test unless the test stopped it first
// (Shutdown is idempotent); a shutdown error fails the test.
func tryStart(t *testing.T, cfg config.Config, opts server.Options) (*server.Server, error) {
	t.Helper()
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	srv, err := server.Start(context.Background(), cfg, opts)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { stop(t, srv) })
	return srv, nil
}

// start is tryStart for the tests whose start must succeed.
func start(t *testing.T, cfg config.Config, opts server.Options) *server.Server {
	t.Helper()
	srv, err := tryStart(t, cfg, opts)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	return srv
}

// stop shuts srv down within 20 s, failing the test on an error.
func stop(t *testing.T, srv *server.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// apiRequest sends one API request as token to the server at addr (host:port)
// and returns the status and the body. body, when not nil, is sent as JSON.
func apiRequest(t *testing.T, addr, token, method, path string, body any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := nethttp.NewRequest(method, "http://"+addr+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
