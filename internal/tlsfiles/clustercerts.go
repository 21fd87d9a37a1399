package tlsfiles

import (
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"
)

// ClusterNode is a node of the integrated cluster to make a route
// certificate for.
type ClusterNode struct {
	// Name is the node name (serve --cluster-node-name or --instance-id);
	// it is the certificate's common name, a DNS name in it and the stem of
	// its file names.
	Name string
}

// CertFile is the node's certificate file name in the ClusterCerts
// directory (beside CACertFile and CAKeyFile: one pair per node, named
// after it).
func (n ClusterNode) CertFile() string { return n.Name + ".crt" }

// KeyFile is the node's key file name in the ClusterCerts directory.
func (n ClusterNode) KeyFile() string { return n.Name + ".key" }

// nodeName is what ClusterCerts accepts as a node name: a file name stem
// and a DNS label-ish name, nothing that walks out of the directory.
var nodeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ClusterCerts makes, in dir, a CA for the integrated cluster's routes
// (ca.crt, ca.key) and for every node a certificate and key
// (<name>.crt, <name>.key) signed by it, valid for validity. A route
// certificate serves both ends of a route, so each is issued for server
// and client authentication. Its names are the node's name, hosts (the
// addresses the peers dial: IP addresses or DNS names, the same list for
// every node) and 127.0.0.1 and localhost. Keys are ECDSA P-256, written
// 0600; existing files are never overwritten. For a deployment without a
// PKI of its own; ca.key is not needed by any node and should not stay on
// them.
func ClusterCerts(dir string, nodes []ClusterNode, hosts []string, validity time.Duration, now time.Time) error {
	if err := checkClusterNodes(dir, nodes); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cluster certs: %w", err)
	}
	ca, err := newCA("e4c2 cluster route CA", validity, now)
	if err != nil {
		return fmt.Errorf("cluster certs: %w", err)
	}
	type pair struct {
		der []byte
		key *ecdsa.PrivateKey
	}
	pairs := make([]pair, len(nodes))
	for i, n := range nodes {
		names := append([]string{n.Name}, hosts...)
		for _, h := range []string{"127.0.0.1", "localhost"} {
			if !slices.Contains(names, h) {
				names = append(names, h)
			}
		}
		der, key, err := ca.issue(n.Name, names,
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, validity, now)
		if err != nil {
			return fmt.Errorf("cluster certs: node %s: %w", n.Name, err)
		}
		pairs[i] = pair{der, key}
	}
	if err := writePEM(filepath.Join(dir, CACertFile), "CERTIFICATE", ca.cert.Raw, 0o644); err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, CAKeyFile), ca.key); err != nil {
		return err
	}
	for i, n := range nodes {
		if err := writePEM(filepath.Join(dir, n.CertFile()), "CERTIFICATE", pairs[i].der, 0o644); err != nil {
			return err
		}
		if err := writeKey(filepath.Join(dir, n.KeyFile()), pairs[i].key); err != nil {
			return err
		}
	}
	return nil
}

// checkClusterNodes refuses bad or repeated node names and files that
// exist already, before anything is written.
func checkClusterNodes(dir string, nodes []ClusterNode) error {
	if len(nodes) == 0 {
		return errors.New("cluster certs: no node names")
	}
	files := []string{CACertFile, CAKeyFile}
	seen := map[string]bool{}
	for _, n := range nodes {
		if !nodeName.MatchString(n.Name) || n.Name == "ca" {
			return fmt.Errorf("cluster certs: node name %q: want letters, digits, '.', '_' or '-' (not \"ca\")", n.Name)
		}
		if seen[n.Name] {
			return fmt.Errorf("cluster certs: node %s named twice", n.Name)
		}
		seen[n.Name] = true
		files = append(files, n.CertFile(), n.KeyFile())
	}
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("cluster certs: %s exists: %w", filepath.Join(dir, f), os.ErrExist)
		}
	}
	return nil
}
