package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/server"
)

// TestServerSnapshotAtStopAndStart: a graceful stop leaves a key-state
// snapshot (0600 in a 0700 directory) that the next start loads; a
// damaged one is ignored with a warning and --from-scratch ignores it.
func TestServerSnapshotAtStopAndStart(t *testing.T) {
	cfg := testConfig(t)
	startLogged := func(cfg config.Config) (*server.Server, *bytes.Buffer) {
		var logs bytes.Buffer
		return start(t, cfg, server.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}), &logs
	}
	srv, _ := startLogged(cfg)
	if _, err := srv.Service().NewClient(context.Background(), c2.Origin{Actor: "cli:test"}, c2.ByName("dev-1"),
		bytes.Repeat([]byte{1}, 32), domain.RoleBoth); err != nil {
		t.Fatal(err)
	}
	end := srv.Service().Position()
	stop(t, srv)
	snaps, _ := filepath.Glob(filepath.Join(cfg.DataDir, "snapshots", "keystate-*.snap"))
	if len(snaps) != 1 {
		t.Fatalf("%d snapshots after a graceful stop", len(snaps))
	}
	for _, p := range []string{snaps[0], filepath.Dir(snaps[0])} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Fatalf("%s: mode %04o", p, fi.Mode().Perm())
		}
	}

	srv, _ = startLogged(cfg)
	if got := srv.Service().LoadedSnapshot().Position; got != end {
		t.Fatalf("start loaded snapshot %d, want %d", got, end)
	}
	stop(t, srv)

	fs := cfg
	fs.FromScratch = true
	srv, _ = startLogged(fs)
	if srv.Service().LoadedSnapshot().Position != 0 || srv.Service().CountClients() != 1 {
		t.Fatal("--from-scratch used a snapshot")
	}
	stop(t, srv)

	snaps, _ = filepath.Glob(filepath.Join(cfg.DataDir, "snapshots", "keystate-*.snap"))
	for _, p := range snaps {
		if err := os.WriteFile(p, []byte("garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv, logs := startLogged(cfg)
	if srv.Service().LoadedSnapshot().Position != 0 || srv.Service().CountClients() != 1 {
		t.Fatal("a damaged snapshot was used")
	}
	if !strings.Contains(logs.String(), "ignoring a key-state snapshot") {
		t.Fatalf("no warning about the damaged snapshot: %s", logs.String())
	}
	stop(t, srv)
}
