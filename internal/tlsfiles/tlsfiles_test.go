package tlsfiles

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestInitAndServe(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	if err := Init(dir, []string{"127.0.0.1", "localhost"}, time.Hour, now); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{CAKeyFile, ServerKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v, %v; want 0600", f, fi.Mode().Perm(), err)
		}
	}
	if err := Init(dir, []string{"127.0.0.1"}, time.Hour, now); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second Init = %v, want ErrExist (never overwrite)", err)
	}
	tc, r, err := ServerConfig(filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile), "")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tc)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	pem, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	dial := func() (*x509.Certificate, error) {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			return nil, err
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0], nil
	}
	first, err := dial()
	if err != nil {
		t.Fatalf("client with the CA refused: %v", err)
	}
	if _, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "127.0.0.1"}); err == nil {
		t.Fatal("a client without the CA accepted the certificate")
	}

	// Renewal: a new pair in place of the old one is served without restart.
	dir2 := t.TempDir()
	if err := Init(dir2, []string{"127.0.0.1"}, time.Hour, now); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ServerCertFile, ServerKeyFile} {
		b, _ := os.ReadFile(filepath.Join(dir2, f))
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Reload(); err != nil { // what SIGHUP does
		t.Fatal(err)
	}
	pem2, _ := os.ReadFile(filepath.Join(dir2, CACertFile))
	pool.AppendCertsFromPEM(pem2)
	second, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	if first.Equal(second) {
		t.Fatal("the renewed certificate is not served after Reload")
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:1883": true, "localhost:1": true, "127.1.2.3:9": true,
		"0.0.0.0:8080": false, ":8080": false, "10.0.0.1:80": false, "[::]:1883": false, "bad": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// A renewed pair written over the files is served at the next handshake
// after the once-a-second check, without Reload (no SIGHUP needed).
func TestReloadOnFileChange(t *testing.T) {
	dir, dir2 := t.TempDir(), t.TempDir()
	now := time.Now()
	if err := Init(dir, []string{"127.0.0.1"}, time.Hour, now); err != nil {
		t.Fatal(err)
	}
	if err := Init(dir2, []string{"127.0.0.1"}, time.Hour, now); err != nil {
		t.Fatal(err)
	}
	r, err := NewReloader(filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	clock := now
	r.now = func() time.Time { return clock }
	first, _ := r.GetCertificate(nil)
	for _, f := range []string{ServerCertFile, ServerKeyFile} {
		b, _ := os.ReadFile(filepath.Join(dir2, f))
		p := filepath.Join(dir, f)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		later := now.Add(time.Minute)
		if err := os.Chtimes(p, later, later); err != nil {
			t.Fatal(err)
		}
	}
	same, _ := r.GetCertificate(nil)
	if !bytes.Equal(same.Certificate[0], first.Certificate[0]) {
		t.Fatal("reloaded before the once-a-second check was due")
	}
	clock = clock.Add(2 * time.Second)
	renewed, _ := r.GetCertificate(nil)
	if bytes.Equal(renewed.Certificate[0], first.Certificate[0]) {
		t.Fatal("the renewed files were not picked up")
	}
}
