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

func run() error {
	var o natsnode.Options
	if err := json.Unmarshal([]byte(os.Getenv(Env)), &o); err != nil {
		return fmt.Errorf("%s: %w", Env, err)
	}
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
