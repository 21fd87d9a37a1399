package server_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/server"
)

// TestBackupRouteAdminOnly: the backup route needs an admin token, and
// streams the store, the snapshots and the manifest last, never the master
// key.
func TestBackupRouteAdminOnly(t *testing.T) {
	cfg := testConfig(t)
	cfg.AdminTokenFile = filepath.Join(t.TempDir(), "admin.token")
	srv := start(t, cfg, server.Options{})
	b, _ := os.ReadFile(cfg.AdminTokenFile)
	admin := strings.TrimSpace(string(b))
	reader, _, err := srv.Service().CreateToken(context.Background(), c2.Origin{Actor: "cli:test"}, "r", domain.TokenReader)
	if err != nil {
		t.Fatal(err)
	}
	get := func(tok string) *nethttp.Response {
		req, _ := nethttp.NewRequest("GET", "http://"+srv.HTTPAddr()+server.BackupPath, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := nethttp.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for tok, want := range map[string]int{"": 401, "nope": 401, reader: 403} {
		resp := get(tok)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("token %q: %d, want %d", tok[:min(len(tok), 4)], resp.StatusCode, want)
		}
	}
	resp := get(admin)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("admin: %d", resp.StatusCode)
	}
	tr := tar.NewReader(resp.Body)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Mode != 0o600 {
			t.Fatalf("%s: mode %o", h.Name, h.Mode)
		}
		names = append(names, h.Name)
	}
	if len(names) < 2 || names[0] != "e4c2.db" || names[len(names)-1] != server.BackupManifestName {
		t.Fatalf("backup entries %v", names)
	}
	for _, n := range names {
		if strings.Contains(n, "master") {
			t.Fatalf("backup holds %s", n)
		}
	}
}
