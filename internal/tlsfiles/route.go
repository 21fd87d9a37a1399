package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// ErrRouteCert: a route certificate that cannot serve both ends of a
// route (it does not chain to the CA, or its extended key usage lacks
// server or client authentication).
var ErrRouteCert = errors.New("route certificate unusable")

// RouteConfig returns the mutual TLS configuration of the integrated
// cluster's NATS routes. A route is a TLS connection in which the dialing
// node is the client and the listening node the server, and every node
// does both; so one configuration serves both ends: it presents the pair
// of files, verifies the listener's certificate against the CA (RootCAs,
// host name from the peer URL) and requires and verifies the dialer's
// (ClientCAs, RequireAndVerifyClientCert). TLS 1.2 is the floor; Go
// negotiates 1.3 whenever both ends have it.
//
// The node's own certificate is checked against the CA for both uses at
// start: a node that could not join would otherwise only show up as
// routes that never come up. Errors name the files, never their contents.
func RouteConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster tls: certificate %s / key %s: %w", certFile, keyFile, err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("cluster tls: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("cluster tls: CA file %s holds no PEM certificate", caFile)
	}
	if err := checkRouteCert(cert, pool); err != nil {
		return nil, fmt.Errorf("cluster tls: certificate %s: %w", certFile, err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}, nil
}

// checkRouteCert verifies that the leaf of cert chains to roots for
// server and for client authentication (x509 accepts a chain for any one
// of the listed usages, hence two checks).
func checkRouteCert(cert tls.Certificate, roots *x509.CertPool) error {
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("%w: %w", ErrRouteCert, err)
		}
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	for _, u := range []struct {
		usage x509.ExtKeyUsage
		name  string
	}{{x509.ExtKeyUsageServerAuth, "server"}, {x509.ExtKeyUsageClientAuth, "client"}} {
		opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{u.usage}}
		if _, err := leaf.Verify(opts); err != nil {
			return fmt.Errorf("%w: not valid for %s authentication under the cluster CA (a route needs both): %w", ErrRouteCert, u.name, err)
		}
	}
	return nil
}
