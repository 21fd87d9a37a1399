package natsnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure a node.
type Options struct {
	// ServerName names the node in the cluster (unique per node).
	ServerName string
	// ClusterName is the name shared by the nodes of one cluster.
	ClusterName string
	// StoreDir holds JetStream's data.
	StoreDir string
	// ClientListen is the host:port of the client listener (port 0: any).
	ClientListen string
	// RouteListen is the host:port of the cluster route listener.
	RouteListen string
	// Peers are the route URLs (nats://host:port) of the other nodes.
	Peers []string
	// ReadyTimeout bounds the wait for the client listener and for a
	// JetStream meta leader (default 2 minutes: the other nodes may start
	// later). The context of Start bounds it too.
	ReadyTimeout time.Duration
	// Logger receives the node's start and stop (default: discarded).
	Logger *slog.Logger
}

// Node is a running embedded nats-server.
type Node struct {
	srv *server.Server
	log *slog.Logger
}

// ErrNotReady is returned when the node does not become ready in time.
var ErrNotReady = errors.New("natsnode: not ready")

// DefaultReadyTimeout is the default of Options.ReadyTimeout.
const DefaultReadyTimeout = 2 * time.Minute

// serverOptions translates o into nats-server options.
func serverOptions(o Options) (*server.Options, error) {
	host, port, err := splitHostPort(o.ClientListen)
	if err != nil {
		return nil, fmt.Errorf("natsnode: client listen: %w", err)
	}
	rhost, rport, err := splitHostPort(o.RouteListen)
	if err != nil {
		return nil, fmt.Errorf("natsnode: route listen: %w", err)
	}
	var routes []*url.URL
	for _, p := range o.Peers {
		u, err := url.Parse(p)
		if err != nil {
			return nil, fmt.Errorf("natsnode: peer %q: %w", p, err)
		}
		if u.Scheme != "nats" && u.Scheme != "nats-route" || u.Host == "" {
			return nil, fmt.Errorf("natsnode: peer %q: want nats://host:port", p)
		}
		routes = append(routes, u)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if rport == 0 {
		rport = server.RANDOM_PORT
	}
	return &server.Options{
		ServerName: o.ServerName,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoLog:      true,
		NoSigs:     true,
		Cluster:    server.ClusterOpts{Name: o.ClusterName, Host: rhost, Port: rport},
		Routes:     routes,
	}, nil
}

func splitHostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q: %w", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("%q: bad port", addr)
	}
	return h, n, nil
}

// Start starts the node and waits until it accepts clients and knows its
// JetStream meta leader. On error nothing keeps running.
func Start(ctx context.Context, o Options) (*Node, error) {
	so, err := serverOptions(o)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = DefaultReadyTimeout
	}
	srv, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("natsnode: %w", err)
	}
	n := &Node{srv: srv, log: o.Logger}
	go srv.Start()
	ctx, cancel := context.WithTimeout(ctx, o.ReadyTimeout)
	defer cancel()
	if err := n.waitReady(ctx); err != nil {
		n.Shutdown()
		return nil, err
	}
	n.log.Info("nats node ready", "server_name", o.ServerName, "cluster", o.ClusterName,
		"client_url", srv.ClientURL(), "meta_leader", n.MetaLeader())
	return n, nil
}

// waitReady polls the node until it accepts clients and names a meta
// leader, or ctx ends.
func (n *Node) waitReady(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	logged := time.Now()
	for {
		if n.srv.ReadyForConnections(50*time.Millisecond) && n.MetaLeader() != "" {
			return nil
		}
		if time.Since(logged) > 10*time.Second {
			n.log.Info("nats node waiting for a quorum of its peers")
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: no JetStream meta leader (are a majority of the peers up and reachable?): %w", ErrNotReady, ctx.Err())
		case <-tick.C:
		}
	}
}

// MetaLeader returns the server name of the JetStream meta leader as this
// node sees it ("" while there is none).
func (n *Node) MetaLeader() string {
	info, err := n.srv.Jsz(&server.JSzOptions{})
	if err != nil || info.Meta == nil {
		return ""
	}
	return info.Meta.Leader
}

// IsMetaLeader reports whether this node leads the JetStream meta group.
func (n *Node) IsMetaLeader() bool { return n.srv.JetStreamIsLeader() }

// ClientURL is the nats:// URL of the node's client listener.
func (n *Node) ClientURL() string { return n.srv.ClientURL() }

// RouteAddr is the bound address of the route listener.
func (n *Node) RouteAddr() net.Addr { return n.srv.ClusterAddr() }

// Name is the node's server name.
func (n *Node) Name() string { return n.srv.Name() }

// Shutdown stops the node and waits until it has stopped.
func (n *Node) Shutdown() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.log.Info("nats node stopped")
}
