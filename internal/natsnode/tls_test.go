package natsnode

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// testCA is a throwaway certificate authority for route certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test route CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// routeTLS issues a route certificate for name (valid for 127.0.0.1,
// server and client use) and returns the mutual TLS configuration of a
// node holding it, as tlsfiles.RouteConfig builds it from files.
func (ca *testCA) routeTLS(t *testing.T, name string) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: n, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs:      ca.pool, ClientCAs: ca.pool, ClientAuth: tls.RequireAndVerifyClientCert}
}

// peersOf returns the route URLs of every address but routes[i].
func peersOf(routes []string, i int) []string {
	var peers []string
	for j, r := range routes {
		if j != i {
			peers = append(peers, "nats://"+r)
		}
	}
	return peers
}

// startNodes starts the nodes of opts together and fails the test unless
// every one becomes ready.
func startNodes(t *testing.T, opts []Options) []*Node {
	t.Helper()
	nodes := make([]*Node, len(opts))
	errs := make([]error, len(opts))
	var wg sync.WaitGroup
	for i := range opts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			nodes[i], errs[i] = Start(ctx, opts[i])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %s: %v", opts[i].ServerName, err)
		}
		t.Cleanup(nodes[i].Shutdown)
	}
	return nodes
}

// checkRouteListener: the route listener at addr speaks TLS 1.3 with a
// peer holding a certificate of the cluster's CA, then asks for
// authentication; it answers nothing to a TLS client without a
// certificate.
func checkRouteListener(t *testing.T, addr string, peer *tls.Config) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, peer)
	if err != nil {
		t.Fatalf("TLS to the route listener with a cluster certificate: %v", err)
	}
	defer c.Close()
	if v := c.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("route TLS version %s, want TLS 1.3", tls.VersionName(v))
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	info, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("route INFO: %v", err)
	}
	if !strings.Contains(info, `"auth_required":true`) {
		t.Errorf("route INFO %s does not ask for authentication", info)
	}

	anon := peer.Clone()
	anon.Certificates = nil
	c2, err := tls.DialWithDialer(d, "tcp", addr, anon)
	if err == nil {
		defer c2.Close()
		// TLS 1.3: the server refuses the missing certificate after the
		// client finished its handshake; the first read shows it.
		_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = bufio.NewReader(c2).ReadString('\n')
	}
	if err == nil {
		t.Error("the route listener talked to a TLS client without a certificate")
	}
}

// TestMutualTLSCluster: three nodes with route TLS (one CA) and a shared
// secret form a cluster; their route listeners require TLS and
// authentication; a JetStream stream with three replicas takes a message
// through one node and serves it through another.
func TestMutualTLSCluster(t *testing.T) {
	ca := newTestCA(t)
	secret := []byte("a shared route secret, 32 bytes!")
	routes := freeAddrs(t, 3)
	var opts []Options
	for i := range 3 {
		name := fmt.Sprintf("n%d", i+1)
		opts = append(opts, Options{ServerName: name, ClusterName: "t", StoreDir: t.TempDir(),
			ClientListen: "127.0.0.1:0", RouteListen: routes[i], Peers: peersOf(routes, i),
			RouteTLS: ca.routeTLS(t, name), RouteSecret: secret})
	}
	nodes := startNodes(t, opts)
	for _, n := range nodes {
		if got := len(n.RouteNames()); got != 2 {
			t.Errorf("%s has routes with %v, want the two others", n.Name(), n.RouteNames())
		}
	}
	checkRouteListener(t, routes[0], opts[0].RouteTLS)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc1, err := nats.Connect(nodes[0].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc1.Close()
	js1, _ := jetstream.New(nc1)
	if _, err := js1.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3}); err != nil {
		t.Fatalf("create an R3 stream: %v", err)
	}
	if _, err := js1.Publish(ctx, "r3.a", []byte("over TLS routes")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	nc3, err := nats.Connect(nodes[2].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc3.Close()
	js3, _ := jetstream.New(nc3)
	s, err := js3.Stream(ctx, "R3")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.CachedInfo().Cluster.Replicas) != 2 {
		t.Errorf("stream replicas %+v, want a leader and two replicas", s.CachedInfo().Cluster)
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatalf("message through node 3: %v", err)
	}
	if string(m.Data) != "over TLS routes" {
		t.Fatalf("message through node 3: %q", m.Data)
	}
}

// TestRouteRefusesStrangers starts two good nodes of a three-node cluster
// (a quorum: they elect a meta leader) and puts in the third slot, one
// after the other, nodes that must not join: a certificate of another CA,
// no TLS, the wrong secret, no secret. None gets a route to the good nodes
// (the good nodes dial it too: both directions are refused) or a meta
// leader. Last, a proper third node joins the same slot, which shows the
// slot was reachable all along.
func TestRouteRefusesStrangers(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	secret := []byte("the right secret of this cluster")
	routes := freeAddrs(t, 3)
	good := func(i int) Options {
		name := fmt.Sprintf("n%d", i+1)
		return Options{ServerName: name, ClusterName: "t", StoreDir: t.TempDir(), ClientListen: "127.0.0.1:0",
			RouteListen: routes[i], Peers: peersOf(routes, i), RouteTLS: ca.routeTLS(t, name), RouteSecret: secret}
	}
	nodes := startNodes(t, []Options{good(0), good(1)})

	strangers := map[string]func(*Options){
		"other CA":     func(o *Options) { o.RouteTLS = other.routeTLS(t, o.ServerName) },
		"plaintext":    func(o *Options) { o.RouteTLS = nil },
		"wrong secret": func(o *Options) { o.RouteSecret = []byte("a guess") },
		// The secret authenticates the node that dials: nats-server checks
		// it on the listening side only. This stranger listens where no
		// good node dials and has to dial in (a node without the secret
		// that the good nodes dial is kept out by route TLS, not by the
		// secret: see docs/high-availability.md).
		"no secret": func(o *Options) { o.RouteSecret = nil; o.RouteListen = freeAddrs(t, 1)[0] },
	}
	for _, name := range []string{"other CA", "plaintext", "wrong secret", "no secret"} {
		t.Run(name, func(t *testing.T) {
			o := good(2)
			o.ServerName = "stranger-" + strings.ReplaceAll(name, " ", "-")
			strangers[name](&o)
			o.ReadyTimeout = 3 * time.Second
			var joined atomic.Bool
			stop := make(chan struct{})
			watched := make(chan struct{})
			go func() {
				defer close(watched)
				// A refused handshake lists the stranger for the few
				// milliseconds between its INFO and the refusal (the good
				// nodes retry about every second); a route is one that
				// stays listed for 200 ms.
				var since time.Time
				for {
					listed := false
					for _, n := range nodes {
						listed = listed || slices.Contains(n.RouteNames(), o.ServerName)
					}
					switch {
					case !listed:
						since = time.Time{}
					case since.IsZero():
						since = time.Now()
					case time.Since(since) >= 200*time.Millisecond:
						joined.Store(true)
					}
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}()
			n, err := Start(context.Background(), o)
			close(stop)
			<-watched
			if err == nil {
				n.Shutdown()
				t.Fatal("the stranger became ready (it has a meta leader)")
			}
			if !errors.Is(err, ErrNotReady) {
				t.Fatalf("stranger: %v, want ErrNotReady", err)
			}
			if joined.Load() {
				t.Error("a good node held a route with the stranger for 200 ms")
			}
			for _, n := range nodes {
				if n.MetaLeader() == "" {
					t.Errorf("%s lost its meta leader", n.Name())
				}
			}
		})
	}

	third := startNodes(t, []Options{good(2)})[0]
	if got := third.RouteNames(); !slices.Equal(got, []string{"n1", "n2"}) {
		t.Fatalf("the proper third node has routes with %v, want n1 and n2", got)
	}
}

// TestRoutePasswordInMemoryOnly: the route password reaches the
// nats-server options (listener and route URLs) but not the caller's peer
// list, and is not the secret's bytes.
func TestRoutePasswordInMemoryOnly(t *testing.T) {
	peers := []string{"nats://127.0.0.1:6223"}
	o := Options{ClientListen: "127.0.0.1:0", RouteListen: "127.0.0.1:6222", Peers: peers, RouteSecret: []byte("s3cret")}
	so, err := serverOptions(o)
	if err != nil {
		t.Fatal(err)
	}
	pass := RoutePassword([]byte("s3cret"))
	if so.Cluster.Password != pass || strings.Contains(pass, "s3cret") || len(pass) != 64 {
		t.Fatalf("route password %q", so.Cluster.Password)
	}
	if p, _ := so.Routes[0].User.Password(); p != pass {
		t.Fatalf("route URL password %q, want the derived one", p)
	}
	if peers[0] != "nats://127.0.0.1:6223" {
		t.Fatalf("the caller's peers changed: %v", peers)
	}
	if _, err := serverOptions(Options{ClientListen: "127.0.0.1:0", RouteListen: "127.0.0.1:6222",
		Peers: []string{"nats://u:p@127.0.0.1:6223"}}); err == nil || strings.Contains(err.Error(), ":p@") {
		t.Fatalf("a peer URL with credentials: %v", err)
	}
}

// Route TLS is mutual or refused: a configuration without the roots to
// verify the listener, without the client CAs to verify the dialer, that
// skips verification or has no certificate is an error; ClientAuth is
// forced to RequireAndVerifyClientCert.
func TestRouteTLSMustBeMutual(t *testing.T) {
	ca := newTestCA(t)
	o := Options{ClientListen: "127.0.0.1:0", RouteListen: "127.0.0.1:6222"}
	o.RouteTLS = ca.routeTLS(t, "n1")
	o.RouteTLS.ClientAuth = tls.NoClientCert
	so, err := serverOptions(o)
	if err != nil {
		t.Fatal(err)
	}
	if so.Cluster.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert || so.Cluster.TLSTimeout != 5 {
		t.Fatalf("route TLS: client auth %v, timeout %v", so.Cluster.TLSConfig.ClientAuth, so.Cluster.TLSTimeout)
	}
	for name, weaken := range map[string]func(*tls.Config){
		"no roots":       func(c *tls.Config) { c.RootCAs = nil },
		"no client CAs":  func(c *tls.Config) { c.ClientCAs = nil },
		"skip verify":    func(c *tls.Config) { c.InsecureSkipVerify = true },
		"no certificate": func(c *tls.Config) { c.Certificates = nil },
	} {
		o.RouteTLS = ca.routeTLS(t, "n1")
		weaken(o.RouteTLS)
		if _, err := serverOptions(o); !errors.Is(err, ErrRouteTLS) {
			t.Errorf("%s: %v, want ErrRouteTLS", name, err)
		}
	}
}
