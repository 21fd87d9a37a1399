package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// Reloader serves a certificate from files and reloads it when they change.
type Reloader struct {
	certFile, keyFile string

	mu        sync.Mutex
	cert      *tls.Certificate
	certMod   time.Time
	keyMod    time.Time
	lastCheck time.Time
	now       func() time.Time
}

// NewReloader loads the pair once; an unreadable or mismatched pair is an
// error at start, not at the first handshake.
func NewReloader(certFile, keyFile string) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile, now: time.Now}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the files now. On error the previous certificate stays.
func (r *Reloader) Reload() error {
	cm, km, err := r.mods()
	if err != nil {
		return err
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls: certificate %s / key %s: %w", r.certFile, r.keyFile, err)
	}
	r.mu.Lock()
	r.cert, r.certMod, r.keyMod, r.lastCheck = &c, cm, km, r.now()
	r.mu.Unlock()
	return nil
}

func (r *Reloader) mods() (cert, key time.Time, err error) {
	ci, err := os.Stat(r.certFile)
	if err != nil {
		return cert, key, fmt.Errorf("tls: certificate: %w", err)
	}
	ki, err := os.Stat(r.keyFile)
	if err != nil {
		return cert, key, fmt.Errorf("tls: key: %w", err)
	}
	return ci.ModTime(), ki.ModTime(), nil
}

// GetCertificate implements tls.Config.GetCertificate: the current pair,
// reloaded first if a file changed (a failed reload keeps the old pair: a
// half-written renewal must not take the listener down).
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	check := r.now().Sub(r.lastCheck) >= time.Second
	if check {
		r.lastCheck = r.now()
	}
	cur, cm0, km0 := r.cert, r.certMod, r.keyMod
	r.mu.Unlock()
	if check {
		if cm, km, err := r.mods(); err == nil && (!cm.Equal(cm0) || !km.Equal(km0)) {
			if r.Reload() == nil {
				r.mu.Lock()
				cur = r.cert
				r.mu.Unlock()
			}
		}
	}
	return cur, nil
}

// ServerConfig returns a TLS 1.2+ server configuration serving the pair of
// files. With clientCAFile, clients must present a certificate signed by
// one of its CAs (mutual TLS).
func ServerConfig(certFile, keyFile, clientCAFile string) (*tls.Config, *Reloader, error) {
	r, err := NewReloader(certFile, keyFile)
	if err != nil {
		return nil, nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
	if clientCAFile != "" {
		pem, err := os.ReadFile(clientCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("tls: client CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("tls: client CA file %s holds no PEM certificate", clientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, r, nil
}

// IsLoopback reports whether a listen address only accepts connections from
// this machine: an IP in 127.0.0.0/8 or ::1, or "localhost". An empty host
// or 0.0.0.0 listens everywhere.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ErrInsecureListen: a non-loopback listener without TLS.
var ErrInsecureListen = errors.New("listening beyond this machine without TLS")
