package tlsfiles

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Files written by Init, in its directory.
const (
	CACertFile     = "ca.crt"
	CAKeyFile      = "ca.key"
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key"
)

// Init makes a local CA and a server certificate for hosts (IP addresses or
// DNS names) in dir, valid for validity: for a test deployment, not a
// substitute for an organisation's PKI. Keys are ECDSA P-256 (also allowed
// in FIPS mode), written 0600; existing files are never overwritten.
func Init(dir string, hosts []string, validity time.Duration, now time.Time) error {
	if len(hosts) == 0 {
		return errors.New("tls init: no host names")
	}
	for _, f := range []string{CACertFile, CAKeyFile, ServerCertFile, ServerKeyFile} {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("tls init: %s exists: %w", filepath.Join(dir, f), os.ErrExist)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tls init: %w", err)
	}
	ca, err := newCA("e4c2 local CA", validity, now)
	if err != nil {
		return fmt.Errorf("tls init: %w", err)
	}
	srvDER, srvKey, err := ca.issue(hosts[0], hosts, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, validity, now)
	if err != nil {
		return fmt.Errorf("tls init: server certificate: %w", err)
	}
	caDER, caKey := ca.cert.Raw, ca.key
	if err := writePEM(filepath.Join(dir, CACertFile), "CERTIFICATE", caDER, 0o644); err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, CAKeyFile), caKey); err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, ServerCertFile), "CERTIFICATE", srvDER, 0o644); err != nil {
		return err
	}
	return writeKey(filepath.Join(dir, ServerKeyFile), srvKey)
}

// localCA is a certificate authority made for a test deployment.
type localCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// newCA makes a self-signed CA (ECDSA P-256) that signs leaves only.
func newCA(cn string, validity time.Duration, now time.Time) (*localCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	return &localCA{cert: cert, key: key}, nil
}

// issue makes a leaf certificate (ECDSA P-256) named cn for hosts (IP
// addresses or DNS names) with the extended key usages given.
func (ca *localCA) issue(cn string, hosts []string, usages []x509.ExtKeyUsage, validity time.Duration, now time.Time) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usages,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	return der, key, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func writeKey(path string, k *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return fmt.Errorf("tls files: %w", err)
	}
	defer clear(der)
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

// writePEM creates path (never overwriting, never following a link).
func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("tls files: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: typ, Bytes: der}); err != nil {
		f.Close()
		return fmt.Errorf("tls files: %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("tls files: %s: %w", path, err)
	}
	return nil
}
