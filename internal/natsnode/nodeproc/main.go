package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/e4c2/e4c2/internal/natsnode"
)

// Env is the environment variable holding the node's options (JSON).
const Env = "E4C2_NATS_NODE"

// Ready starts the stdout line of a ready node; its client URL follows.
const Ready = "nats node ready "

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "nodeproc:", err)
		os.Exit(1)
	}
}

// spec is the JSON of Env: the natsnode.Options a test node needs (no
// route TLS: a *tls.Config does not travel as JSON).
type spec struct {
	ServerName, ClusterName, StoreDir, ClientListen, RouteListen string
	Peers                                                        []string
	ReadyTimeout                                                 time.Duration
}

func run() error {
	var sp spec
	if err := json.Unmarshal([]byte(os.Getenv(Env)), &sp); err != nil {
		return fmt.Errorf("%s: %w", Env, err)
	}
	o := natsnode.Options{ServerName: sp.ServerName, ClusterName: sp.ClusterName, StoreDir: sp.StoreDir,
		ClientListen: sp.ClientListen, RouteListen: sp.RouteListen, Peers: sp.Peers, ReadyTimeout: sp.ReadyTimeout}
	for _, addr := range []string{o.ClientListen, o.RouteListen} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("port taken: %w", err)
		}
		_ = l.Close()
	}
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	n, err := natsnode.Start(context.Background(), o)
	if err != nil {
		return err
	}
	fmt.Println(Ready + n.ClientURL())
	// Reparented: the parent (a test) died without killing this process.
	ppid := os.Getppid()
	for os.Getppid() == ppid {
		time.Sleep(200 * time.Millisecond) // a liveness poll, not synchronization
	}
	n.Shutdown()
	return nil
}
