package console_test

import (
	"context"
	"io"
	"log/slog"
	nethttp "net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/server"
)

// TestConsoleReadOnly: on a server started --read-only one can log in and
// read; no page offers a change, and a crafted change gets a refusal page.
func TestConsoleReadOnly(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.HTTPListen, cfg.MQTTListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.AdminTokenFile = filepath.Join(dir, "admin.token")
	start := func() *server.Server {
		srv, err := server.Start(context.Background(), cfg, server.Options{Out: io.Discard, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	stop := func(srv *server.Server) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	srv := start()
	if _, err := srv.Service().NewTopic(context.Background(), c2.Origin{Actor: "test"}, "site/1"); err != nil {
		t.Fatal(err)
	}
	stop(srv)
	tok, err := os.ReadFile(cfg.AdminTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AdminTokenFile, cfg.ReadOnly = "", true
	srv = start()
	defer stop(srv)

	s := newSession(t, "http://"+srv.HTTPAddr())
	s.login(strings.TrimSpace(string(tok)))
	for path, form := range map[string]string{"/ui/topics": `id="new-topic"`, "/ui/topic?t=site/1": `id="rotate-topic"`, "/ui/tokens": `id="new-token-form"`} {
		resp, body := s.get(path)
		if resp.StatusCode != nethttp.StatusOK || strings.Contains(body, form) {
			t.Errorf("read-only %s = %d, offers a change: %v", path, resp.StatusCode, strings.Contains(body, form))
		}
	}
	csrf := s.csrf("/ui/topics")
	resp, body := s.post("/ui/topics/new", url.Values{"csrf": {csrf}, "name": {"site/2"}}, nil)
	if resp.StatusCode != nethttp.StatusForbidden || !strings.Contains(body, "read-only") {
		t.Fatalf("a change on a read-only server = %d", resp.StatusCode)
	}
	if resp, _ := s.post("/ui/logout", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != nethttp.StatusSeeOther {
		t.Fatalf("logout on a read-only server = %d", resp.StatusCode)
	}
}
