package server_test

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e4c2/e4c2/internal/server"
)

// A start that fails on a busy port prints no token, and the next start
// still does: the first admin token is made only once both listeners are up.
func TestFirstAdminTokenAfterListenersBound(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := testConfig(t)
	cfg.HTTPListen = busy.Addr().String()
	var out bytes.Buffer
	if _, err := tryStart(t, cfg, server.Options{Out: &out}); err == nil {
		t.Fatal("start on a busy port succeeded")
	}
	if strings.Contains(out.String(), "token") {
		t.Fatalf("a failed start printed: %q", out.String())
	}
	cfg.HTTPListen = "127.0.0.1:0"
	out.Reset()
	start(t, cfg, server.Options{Out: &out})
	if !strings.Contains(out.String(), "admin API token") {
		t.Fatalf("the next start printed no token: %q", out.String())
	}
}

func TestAdminTokenFile(t *testing.T) {
	cfg := testConfig(t)
	cfg.AdminTokenFile = filepath.Join(t.TempDir(), "admin.token")
	var out bytes.Buffer
	srv := start(t, cfg, server.Options{Out: &out})
	b, err := os.ReadFile(cfg.AdminTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.TrimSpace(string(b))
	if strings.Contains(out.String(), secret) || !strings.Contains(out.String(), cfg.AdminTokenFile) {
		t.Fatalf("stdout %q: must name the file and not hold the token", out.String())
	}
	if fi, _ := os.Stat(cfg.AdminTokenFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v", fi.Mode().Perm())
	}
	if _, err := srv.Service().VerifyToken(secret); err != nil {
		t.Fatalf("the token in the file does not authenticate: %v", err)
	}
}

func TestStartRefusesWritableDataDir(t *testing.T) {
	cfg := testConfig(t)
	if err := os.Chmod(cfg.DataDir, 0o777); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if srv, err := tryStart(t, cfg, server.Options{Out: &out}); err == nil {
		stop(t, srv)
		t.Fatal("started on a world-writable data directory")
	} else if !strings.Contains(err.Error(), "writable") {
		t.Fatalf("error %q does not say why", err)
	}
}

// A healthy first start logs no error line (mochi's storage hook reports a
// missing $SYS record as an error on every fresh broker file).
func TestFreshStartLogsNoError(t *testing.T) {
	cfg := testConfig(t)
	var logs bytes.Buffer
	srv := start(t, cfg, server.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	stop(t, srv)
	if strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Fatalf("a fresh start logged an error:\n%s", logs.String())
	}
}
