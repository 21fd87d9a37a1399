package natsnode

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
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
	// RouteTLS, if set, makes every route mutual TLS with this
	// configuration (it must verify the peer both as server and as client:
	// RootCAs, ClientCAs and RequireAndVerifyClientCert; see
	// tlsfiles.RouteConfig). Nil: routes in clear.
	RouteTLS *tls.Config
	// RouteSecret, if set, is the secret every node of the cluster shares:
	// a route is accepted only from a node that presents it, and this
	// node presents it to its peers. It never leaves memory but as the
	// route password derived from it (RoutePassword), on the route itself.
	RouteSecret []byte
	// ClientToken, if set, is the token every client of the client
	// listener must present (nats-server's token authorization). The
	// client port has no TLS; on loopback the token keeps the other local
	// users of the machine from writing to the log.
	ClientToken string
}

// RouteTLSTimeout bounds a route's TLS handshake (nats-server's default
// is 2 s; a loaded machine doing three handshakes at once at start needs
// more).
const RouteTLSTimeout = 5 * time.Second

// routeUser is the user name of the route authentication: the secret is
// the password, the name only what nats-server compares it with.
const routeUser = "e4c2-route"

// RoutePassword derives the route password from the shared secret. The
// derivation keeps the file's bytes out of the CONNECT protocol and makes
// any secret a valid password: nats-server would read a secret starting
// with "$2" as a bcrypt hash, and a URL's user info needs escaping.
func RoutePassword(secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("e4c2 cluster route password v1"))
	return hex.EncodeToString(m.Sum(nil))
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
		if u.User != nil {
			return nil, fmt.Errorf("natsnode: peer %s: credentials in a peer URL (give Options.RouteSecret)", u.Redacted())
		}
		routes = append(routes, u)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if rport == 0 {
		rport = server.RANDOM_PORT
	}
	so := &server.Options{
		ServerName: o.ServerName,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		// NoLog: nats-server's own log would name route URLs; this
		// package logs what an operator needs, redacted.
		NoLog:   true,
		NoSigs:  true,
		Cluster: server.ClusterOpts{Name: o.ClusterName, Host: rhost, Port: rport},
		Routes:  routes,
	}
	so.Authorization = o.ClientToken
	if err := secureRoutes(so, o); err != nil {
		return nil, err
	}
	return so, nil
}

// ErrRouteTLS: a route TLS configuration that would not verify both ends.
var ErrRouteTLS = errors.New("natsnode: route TLS must verify peers: give RootCAs, ClientCAs and a certificate")

// secureRoutes adds the route TLS and the route authentication of o to so.
// The password goes into the listener's options and into the in-memory
// route URLs only: a copy of each URL, so the caller's Peers stay clean.
//
// Route TLS is always mutual here: a configuration that skips a check is
// refused, and client certificates are required whatever ClientAuth said.
func secureRoutes(so *server.Options, o Options) error {
	if tc := o.RouteTLS; tc != nil {
		if tc.RootCAs == nil || tc.ClientCAs == nil || tc.InsecureSkipVerify ||
			len(tc.Certificates) == 0 && tc.GetCertificate == nil {
			return ErrRouteTLS
		}
		so.Cluster.TLSConfig = tc.Clone()
		so.Cluster.TLSConfig.ClientAuth = tls.RequireAndVerifyClientCert
		so.Cluster.TLSTimeout = RouteTLSTimeout.Seconds()
	}
	if len(o.RouteSecret) == 0 {
		return nil
	}
	pass := RoutePassword(o.RouteSecret)
	so.Cluster.Username, so.Cluster.Password = routeUser, pass
	for i, u := range so.Routes {
		c := *u
		c.User = url.UserPassword(routeUser, pass)
		so.Routes[i] = &c
	}
	return nil
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

// RouteNames returns the server names of the nodes this node has a route
// with, sorted and without repeats (nats-server pools several routes per
// peer).
func (n *Node) RouteNames() []string {
	rz, err := n.srv.Routez(&server.RoutezOptions{})
	if err != nil {
		return nil
	}
	var names []string
	for _, r := range rz.Routes {
		if r.RemoteName != "" && !slices.Contains(names, r.RemoteName) {
			names = append(names, r.RemoteName)
		}
	}
	slices.Sort(names)
	return names
}

// Name is the node's server name.
func (n *Node) Name() string { return n.srv.Name() }

// Shutdown stops the node and waits until it has stopped.
func (n *Node) Shutdown() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.log.Info("nats node stopped")
}
