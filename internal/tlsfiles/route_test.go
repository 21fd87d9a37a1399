package tlsfiles

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// ClusterCerts writes a CA and one pair per node (keys 0600, names of the
// node, the hosts and loopback); each node's RouteConfig completes a
// mutual TLS handshake with another node's, in both roles and in TLS 1.3;
// a node of another CA is refused either way.
func TestClusterCertsRoundTrip(t *testing.T) {
	dir, otherDir := t.TempDir(), t.TempDir()
	now := time.Now()
	nodes := []ClusterNode{{"c2-a"}, {"c2-b"}}
	if err := ClusterCerts(dir, nodes, []string{"10.0.0.11", "c2.example.net"}, time.Hour, now); err != nil {
		t.Fatal(err)
	}
	if err := ClusterCerts(otherDir, []ClusterNode{{"c2-a"}}, nil, time.Hour, now); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{CAKeyFile, "c2-a.key", "c2-b.key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v, want mode 0600", f, fi, err)
		}
	}
	if err := ClusterCerts(dir, []ClusterNode{{"c2-c"}}, nil, time.Hour, now); !errors.Is(err, os.ErrExist) {
		t.Fatalf("a second run into the same directory: %v, want ErrExist (ca.crt is never overwritten)", err)
	}
	for _, bad := range [][]ClusterNode{nil, {{"../x"}}, {{"ca"}}, {{"a"}, {"a"}}, {{""}}} {
		if err := ClusterCerts(t.TempDir(), bad, nil, time.Hour, now); err == nil {
			t.Errorf("nodes %v accepted", bad)
		}
	}
	cfg := func(dir, node string) *tls.Config {
		t.Helper()
		tc, err := RouteConfig(filepath.Join(dir, node+".crt"), filepath.Join(dir, node+".key"), filepath.Join(dir, CACertFile))
		if err != nil {
			t.Fatal(err)
		}
		return tc
	}
	a, b := cfg(dir, "c2-a"), cfg(dir, "c2-b")
	leaf := a.Certificates[0].Leaf
	if !slices.Contains(leaf.DNSNames, "c2-a") || !slices.Contains(leaf.DNSNames, "c2.example.net") ||
		!slices.Contains(leaf.DNSNames, "localhost") || len(leaf.IPAddresses) != 2 {
		t.Errorf("names of c2-a: %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	if v, err := handshake(a, b, "c2-b"); err != nil || v != tls.VersionTLS13 {
		t.Fatalf("a dials b: %s, %v; want TLS 1.3", tls.VersionName(v), err)
	}
	if _, err := handshake(b, a, "127.0.0.1"); err != nil {
		t.Fatalf("b dials a: %v", err)
	}
	stranger := cfg(otherDir, "c2-a")
	if _, err := handshake(stranger, a, "c2-a"); err == nil {
		t.Error("a accepted a dialer of another CA")
	}
	if _, err := handshake(a, stranger, "c2-a"); err == nil {
		t.Error("a trusted a listener of another CA")
	}
	if _, err := handshake(a, b, "c2-c"); err == nil {
		t.Error("a accepted b's certificate for another name")
	}
}

// handshake runs a TLS handshake of client (dialing serverName) with
// server over a pipe and returns the version, or the first error of
// either end.
func handshake(client, server *tls.Config, serverName string) (uint16, error) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	cc := client.Clone()
	cc.ServerName = serverName
	cl, sv := tls.Client(c1, cc), tls.Server(c2, server)
	_ = c1.SetDeadline(time.Now().Add(5 * time.Second))
	_ = c2.SetDeadline(time.Now().Add(5 * time.Second))
	errc := make(chan error, 1)
	go func() {
		err := sv.Handshake()
		if err == nil {
			_, err = sv.Write([]byte{1})
		}
		errc <- err
	}()
	cerr := cl.Handshake()
	if cerr == nil {
		// TLS 1.3: a refused client certificate shows on the client's
		// first read, after its own handshake ended.
		_, cerr = cl.Read(make([]byte, 1))
	}
	serr := <-errc
	if cerr != nil {
		return 0, cerr
	}
	if serr != nil {
		return 0, serr
	}
	return cl.ConnectionState().Version, nil
}

// RouteConfig refuses, naming the file and not its contents: a missing
// file, a key that is no key, a CA file without a certificate, and a
// certificate that is for servers only (tls init's).
func TestRouteConfigErrors(t *testing.T) {
	dir := t.TempDir()
	if err := ClusterCerts(dir, []ClusterNode{{"n1"}}, nil, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	srvDir := t.TempDir()
	if err := Init(srvDir, []string{"127.0.0.1"}, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	crt, key, ca := filepath.Join(dir, "n1.crt"), filepath.Join(dir, "n1.key"), filepath.Join(dir, CACertFile)
	keyPEM, _ := os.ReadFile(key)
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not PEM at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string][3]string{
		"missing cert":     {filepath.Join(dir, "nope.crt"), key, ca},
		"key is garbage":   {crt, garbage, ca},
		"key is the cert":  {crt, crt, ca},
		"cert is the key":  {key, key, ca},
		"CA is garbage":    {crt, key, garbage},
		"missing CA":       {crt, key, filepath.Join(dir, "nope")},
		"server-only cert": {filepath.Join(srvDir, ServerCertFile), filepath.Join(srvDir, ServerKeyFile), filepath.Join(srvDir, CACertFile)},
		"other CA":         {crt, key, filepath.Join(srvDir, CACertFile)},
	}
	for name, c := range cases {
		_, err := RouteConfig(c[0], c[1], c[2])
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "cluster tls") || strings.Contains(msg, "PRIVATE KEY") || strings.Contains(msg, string(keyPEM[30:60])) {
			t.Errorf("%s: %q", name, msg)
		}
	}
}
