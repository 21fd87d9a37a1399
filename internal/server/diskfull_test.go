package server_test

import (
	"bufio"
	"bytes"
	"context"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/e4c2/e4c2/internal/server"
	"github.com/e4c2/e4c2/internal/testwait"
)

// TestDiskFullReadyzAnd507: with the store's disk full, a write answers 507
// insufficient_storage (not a generic 500), /readyz is not ready, and both
// recover once space is freed; the shutdown needs no space.
func TestDiskFullReadyzAnd507(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s): disk full not tested", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	// A fresh tmpfs root is world-writable (1777): the server refuses that.
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.DataDir = dir
	var out bytes.Buffer
	srv := start(t, cfg, server.Options{Out: &out})
	var token string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "admin API token") && sc.Scan() {
			token = strings.TrimSpace(sc.Text())
		}
	}
	if token == "" {
		t.Fatal("no admin token printed")
	}
	do := func(method, path string, body any) (int, string) {
		return apiRequest(t, srv.HTTPAddr(), token, method, path, body)
	}
	if st, body := do("GET", "/readyz", nil); st != 200 {
		t.Fatalf("readyz before the disk fills: %d %s", st, body)
	}
	// Fill the file system.
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	_ = f.Close()
	got507 := false
	for i := 0; i < 50 && !got507; i++ {
		st, body := do("POST", "/api/v1/topics", map[string]string{"topic": "full/" + strings.Repeat("x", i+1)})
		switch {
		case st == nethttp.StatusInsufficientStorage:
			if !strings.Contains(body, `"insufficient_storage"`) {
				t.Fatalf("507 without its code: %s", body)
			}
			got507 = true
		case st >= 500:
			t.Fatalf("write on a full disk: %d %s, want 507", st, body)
		}
	}
	if !got507 {
		t.Fatal("no write failed on a full disk")
	}
	if st, body := do("GET", "/readyz", nil); st != nethttp.StatusServiceUnavailable {
		t.Fatalf("readyz on a full disk: %d %s, want 503", st, body)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "/readyz to answer 200 after freeing space", func() bool {
		st, _ := do("GET", "/readyz", nil)
		return st == 200
	})
	if st, body := do("POST", "/api/v1/topics", map[string]string{"topic": "after/full"}); st != nethttp.StatusCreated {
		t.Fatalf("write after freeing space: %d %s", st, body)
	}
	// Fill again: the shutdown must not need space.
	f, err = os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	_ = f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown on a full disk: %v", err)
	}
}
