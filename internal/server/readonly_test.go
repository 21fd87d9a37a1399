package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/server"
)

// TestReadOnlyForensics: a store whose chain is broken is refused by a
// normal start; serve --read-only serves it: reads answer, every change is
// refused with the stable code read_only, no admin token is made, nothing
// (store, snapshots, checkpoints) is written.
func TestReadOnlyForensics(t *testing.T) {
	cfg := testConfig(t)
	cfg.AdminTokenFile = filepath.Join(t.TempDir(), "admin.token")
	srv := start(t, cfg, server.Options{})
	ctx := context.Background()
	svc := srv.Service()
	if _, err := svc.NewClient(ctx, c2.Origin{Actor: "cli:test"}, c2.ByName("dev-1"), bytes.Repeat([]byte{7}, 32), domain.RoleBoth); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.NewTopic(ctx, c2.Origin{Actor: "cli:test"}, "site/1"); err != nil {
		t.Fatal(err)
	}
	stop(t, srv)
	tok, _ := os.ReadFile(cfg.AdminTokenFile)
	token := strings.TrimSpace(string(tok))

	// Break the chain: the recorded head of one stream no longer matches
	// its records.
	dbPath := filepath.Join(cfg.DataDir, "e4c2.db")
	db, err := bolt.Open(dbPath, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("heads"))
		k, v := b.Cursor().First()
		v = bytes.Clone(v)
		v[len(v)-1] ^= 0xff
		return b.Put(bytes.Clone(k), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.AdminTokenFile = ""
	if srv, err := tryStart(t, cfg, server.Options{}); err == nil {
		stop(t, srv)
		t.Fatal("a normal start served a broken chain")
	}

	before := fileSums(t, cfg.DataDir)
	cfg.ReadOnly = true
	var out bytes.Buffer
	srv, err = tryStart(t, cfg, server.Options{Out: &out})
	if err != nil {
		t.Fatalf("read-only start: %v", err)
	}
	if out.Len() != 0 {
		t.Fatalf("read-only start printed %q (no admin token bootstrap expected)", out.String())
	}
	base := "http://" + srv.HTTPAddr() + "/api/v1"
	do := func(method, path, body string) (int, string) {
		req, _ := nethttp.NewRequest(method, base+path, strings.NewReader(body))
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
	if code, body := do("GET", "/clients", ""); code != 200 || !strings.Contains(body, "dev-1") {
		t.Fatalf("GET clients: %d %s", code, body)
	}
	if code, body := do("GET", "/topics", ""); code != 200 || !strings.Contains(body, "site/1") {
		t.Fatalf("GET topics: %d %s", code, body)
	}
	for _, r := range [][3]string{
		{"POST", "/topics", `{"topic":"site/2"}`},
		{"POST", "/clients", `{"name":"dev-2","key":"` + strings.Repeat("00", 32) + `"}`},
		{"DELETE", "/clients/dev-1", ""},
		{"PUT", "/clients/dev-1/topics/site%2F1", ""},
		{"POST", "/tokens", `{"name":"x","role":"admin"}`},
	} {
		code, body := do(r[0], r[1], r[2])
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.Unmarshal([]byte(body), &e)
		if code != nethttp.StatusForbidden || e.Error.Code != "read_only" {
			t.Fatalf("%s %s: %d %s, want 403 read_only", r[0], r[1], code, body)
		}
	}
	if srv.MQTTAddr() != "" {
		t.Fatalf("read-only start runs a broker on %s", srv.MQTTAddr())
	}
	stop(t, srv)
	if after := fileSums(t, cfg.DataDir); !equalSums(before, after) {
		t.Fatalf("the data directory changed:\nbefore %v\nafter  %v", before, after)
	}
}

func fileSums(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	m := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		m[strings.TrimPrefix(p, dir)] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func equalSums(a, b map[string][32]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestReadOnlyRefusesSharedLogs: --read-only is the forensic mode for a copy
// of the embedded store; with a shared log (EventStoreDB, JetStream) it is
// refused before any connection is tried, never silently ignored.
func TestReadOnlyRefusesSharedLogs(t *testing.T) {
	for _, url := range []string{"esdb://127.0.0.1:1?tls=false", "nats://127.0.0.1:1"} {
		cfg := testConfig(t)
		cfg.Store = url
		cfg.ReadOnly = true
		srv, err := tryStart(t, cfg, server.Options{})
		if err == nil {
			stop(t, srv)
			t.Fatalf("%s: read-only start succeeded", url)
		}
		if !strings.Contains(err.Error(), "--read-only serves the embedded store only") {
			t.Fatalf("%s: error %q does not name the refusal", url, err)
		}
	}
}
