package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	bolt "go.etcd.io/bbolt"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/server"
)

// sessionDevice registers a device and returns its MQTT client id,
// username and password for the embedded broker.
func sessionDevice(t *testing.T, svc *c2.Service, name string) (id, user, pass string) {
	t.Helper()
	key, err := svc.Suite().GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.NewClient(context.Background(), c2.Origin{Actor: "cli:test"}, c2.ByName(name), key, domain.RoleBoth); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{Suite: svc.Suite(), Mode: svc.Mode(), Name: name, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	user, pass, err = c.MQTTCredential()
	if err != nil {
		t.Fatal(err)
	}
	return "e4dev-" + user, user, pass
}

func sessionConnect(t *testing.T, addr, id, user, pass string, onMsg paho.MessageHandler) paho.Client {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetUsername(user).SetPassword(pass).
		SetCleanSession(false).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second)
	if onMsg != nil {
		opts.SetDefaultPublishHandler(onMsg)
	}
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	return c
}

// TestBackupKeepsBrokerSessions: a device is away while another publishes
// QoS 2 messages to a topic it subscribed to, so they wait in its session
// of the embedded broker (not in the C2's log: nothing resends them). An
// online backup taken while the server serves holds the session file; a
// restore into a new data directory serves it, and the device, back,
// receives the messages.
func TestBackupKeepsBrokerSessions(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.HTTPListen, cfg.MQTTListen = "127.0.0.1:0", "127.0.0.1:0"
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	cfg.AdminTokenFile = tokenFile
	ctx := context.Background()
	srv, err := server.Start(ctx, cfg, server.Options{Out: io.Discard, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(ctx)
	svc := srv.Service()
	const topic = "held/t"
	if _, err := svc.NewTopic(ctx, c2.Origin{Actor: "cli:test"}, topic); err != nil {
		t.Fatal(err)
	}
	rxID, rxUser, rxPass := sessionDevice(t, svc, "held-rx")
	txID, txUser, txPass := sessionDevice(t, svc, "held-tx")
	if _, err := svc.AttachClients(ctx, c2.Origin{Actor: "cli:test"}, topic, []c2.ClientRef{c2.ByName("held-rx"), c2.ByName("held-tx")}); err != nil {
		t.Fatal(err)
	}
	rx := sessionConnect(t, srv.MQTTAddr(), rxID, rxUser, rxPass, nil)
	if tok := rx.Subscribe(topic, 2, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	rx.Disconnect(100)
	rxDomain := domain.ClientID("held-rx")
	for deadline := time.Now().Add(30 * time.Second); srv.DeviceOnline(rxDomain); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the broker still sees the device online")
		}
	}
	tx := sessionConnect(t, srv.MQTTAddr(), txID, txUser, txPass, nil)
	want := []string{"held-1", "held-2", "held-3"}
	for _, p := range want {
		// QoS 2 completes once the broker processed the message: it is in
		// the away device's session when the token is done.
		if tok := tx.Publish(topic, 2, false, p); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	tx.Disconnect(100)

	backupDir := filepath.Join(t.TempDir(), "backup")
	var out, errb bytes.Buffer
	if code := run([]string{"backup", backupDir, "--server", "http://" + srv.HTTPAddr(), "--token-file", tokenFile}, nil, &out, &errb); code != 0 {
		t.Fatalf("backup: exit %d\n%s", code, errb.String())
	}
	if strings.Contains(out.String(), "not included: broker.db") {
		t.Fatalf("the backup left the session file out:\n%s", out.String())
	}
	if n := heldMessages(t, filepath.Join(backupDir, "broker.db"), rxID); n < len(want) {
		t.Fatalf("the backup's session file holds %d messages for the device, want %d", n, len(want))
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}

	restored := filepath.Join(t.TempDir(), "restored")
	if err := os.MkdirAll(restored, 0o700); err != nil {
		t.Fatal(err)
	}
	master, err := os.ReadFile(filepath.Join(cfg.DataDir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(restored, "master.key"), master, 0o600); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"restore", "--from", backupDir, "--data-dir", restored}, nil, io.Discard, &errb); code != 0 {
		t.Fatalf("restore: exit %d\n%s", code, errb.String())
	}
	rcfg := cfg
	rcfg.DataDir, rcfg.AdminTokenFile = restored, ""
	srv2, err := server.Start(ctx, rcfg, server.Options{Out: io.Discard, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("serve the restored directory: %v", err)
	}
	defer srv2.Shutdown(sctx)
	var mu sync.Mutex
	var got []string
	rx = sessionConnect(t, srv2.MQTTAddr(), rxID, rxUser, rxPass, func(_ paho.Client, m paho.Message) {
		if m.Topic() == topic {
			mu.Lock()
			got = append(got, string(m.Payload()))
			mu.Unlock()
		}
	})
	defer rx.Disconnect(100)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		done := len(got) >= len(want)
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the device received %v from the restored broker, want %v", got, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("the device received %v, want %v", got, want)
	}
}

// heldMessages counts the in-flight messages stored for client id in a
// session file (mochi's keys: IFM_<client id>:<packet id>).
func heldMessages(t *testing.T, path, id string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, _ []byte) error {
				if strings.HasPrefix(string(k), fmt.Sprintf("IFM_%s:", id)) {
					n++
				}
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
