package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/server"
	"github.com/e4c2/e4c2/internal/testwait"
	"github.com/e4c2/e4c2/projections"
)

// TestOnlineBackupUnderLoadRestores: e4c2 backup, taken while operations
// run concurrently, then e4c2 restore into a new data directory: every
// operation acknowledged before the backup started is in the restored
// store, which verifies (chains and sealed keys) and serves. The backup is
// 0700/0600 and does not hold the master key.
func TestOnlineBackupUnderLoadRestores(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.HTTPListen, cfg.MQTTListen = "127.0.0.1:0", "127.0.0.1:0"
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	cfg.AdminTokenFile = tokenFile
	srv, err := server.Start(context.Background(), cfg, server.Options{Out: io.Discard, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	svc := srv.Service()
	ctx := context.Background()
	origin := c2.Origin{Actor: "cli:test"}
	if _, err := svc.NewTopic(ctx, origin, "site/load"); err != nil {
		t.Fatal(err)
	}

	// Load: writers register clients and attach them, each recording
	// what was acknowledged.
	var mu sync.Mutex
	var acked []string
	var stopLoad atomic.Bool
	var wg sync.WaitGroup
	var n atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stopLoad.Load(); i++ {
				name := fmt.Sprintf("dev-%d-%d", w, i)
				if _, err := svc.NewClient(ctx, origin, c2.ByName(name), bytes.Repeat([]byte{byte(i)}, 32), domain.RoleBoth); err != nil {
					t.Errorf("new client: %v", err)
					return
				}
				if _, err := svc.AttachClients(ctx, origin, "site/load", []c2.ClientRef{c2.ByName(name)}); err != nil {
					t.Errorf("attach: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, name)
				mu.Unlock()
				n.Add(1)
			}
		}()
	}
	testwait.For(t, "100 acknowledged changes before the backup", func() bool { return n.Load() >= 100 })
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()
	backupDir := filepath.Join(t.TempDir(), "backup")
	var out, errb bytes.Buffer
	code := run([]string{"backup", backupDir, "--server", "http://" + srv.HTTPAddr(), "--token-file", tokenFile}, nil, &out, &errb)
	during := n.Load()
	stopLoad.Store(true)
	wg.Wait()
	if code != 0 {
		t.Fatalf("backup: exit %d\n%s", code, errb.String())
	}
	t.Logf("backup: %s(%d operations acknowledged before, %d by its end)", out.String(), len(before), during)
	if !strings.Contains(out.String(), "hash chains intact") || !strings.Contains(out.String(), "master key is not in the backup") {
		t.Fatalf("backup output: %s", out.String())
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}

	// Modes, and no master key in any file.
	master, err := os.ReadFile(filepath.Join(cfg.DataDir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	masterHex := strings.TrimSpace(string(master))
	err = filepath.WalkDir(backupDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", p, fi.Mode().Perm(), want)
		}
		if !d.IsDir() {
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, []byte(masterHex)) || filepath.Base(p) == "master.key" {
				t.Errorf("%s holds the master key", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Restore into a new data directory with the master key put back.
	restored := filepath.Join(t.TempDir(), "restored")
	if err := os.MkdirAll(restored, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(restored, "master.key"), master, 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"restore", "--from", backupDir, "--data-dir", restored}, nil, &out, &errb); code != 0 {
		t.Fatalf("restore: exit %d\n%s", code, errb.String())
	}
	if !strings.Contains(out.String(), "sealed keys open with the master key") {
		t.Fatalf("restore did not check the sealed keys: %s", out.String())
	}
	// A second restore into it is refused without --force.
	if code := run([]string{"restore", "--from", backupDir, "--data-dir", restored}, nil, io.Discard, io.Discard); code == 0 {
		t.Fatal("restore over an existing store succeeded without --force")
	}

	st, err := openStoreMode(ctx, filepath.Join(restored, "e4c2.db"), true, true)
	if err != nil {
		t.Fatal(err)
	}
	ks := projections.NewKeyState()
	if _, err := projections.Rebuild(ctx, st, projections.AsOf{}, ks); err != nil {
		t.Fatal(err)
	}
	st.Close()
	h := domain.TopicHash("site/load")
	for _, name := range before {
		id := domain.ClientID(name)
		if !ks.ClientView(id).Exists {
			t.Fatalf("%s was acknowledged before the backup and is not in the restored store", name)
		}
		if linked, _ := ks.Linked(id, h); !linked {
			t.Fatalf("%s's attachment was acknowledged before the backup and is not in the restored store", name)
		}
	}

	// The restored directory serves.
	rcfg := cfg
	rcfg.DataDir, rcfg.AdminTokenFile = restored, ""
	srv2, err := server.Start(ctx, rcfg, server.Options{Out: io.Discard, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("serve the restored directory: %v", err)
	}
	if got := srv2.Service().CountClients(); got < len(before) {
		t.Fatalf("restored server has %d clients, want at least %d", got, len(before))
	}
	if err := srv2.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
}
