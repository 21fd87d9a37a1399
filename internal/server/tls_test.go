package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	nethttp "net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/client/e4mqtt"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/server"
	"github.com/e4c2/e4c2/internal/tlsfiles"
)

// Both listeners over TLS: the API answers HTTPS for a client that trusts
// the CA and nothing in clear; a device connects over ssl:// and gets its
// key; with a client CA, a device without a certificate is refused.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	if err := tlsfiles.Init(dir, []string{"127.0.0.1"}, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, tlsfiles.ServerCertFile), filepath.Join(dir, tlsfiles.ServerKeyFile)
	caPEM, _ := os.ReadFile(filepath.Join(dir, tlsfiles.CACertFile))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)

	startTLS := func(clientCA string) *server.Server {
		cfg := testConfig(t)
		cfg.TLSCertFile, cfg.TLSKeyFile = cert, key
		cfg.MQTTTLSCertFile, cfg.MQTTTLSKeyFile, cfg.MQTTClientCAFile = cert, key, clientCA
		return start(t, cfg, server.Options{})
	}
	srv := startTLS("")
	hc := &nethttp.Client{Timeout: 10 * time.Second, Transport: &nethttp.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get("https://" + srv.HTTPAddr() + "/healthz")
	if err != nil {
		t.Fatalf("https: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != nethttp.StatusOK {
		t.Fatalf("https /healthz: %d", resp.StatusCode)
	}
	if resp, err := (&nethttp.Client{Timeout: 5 * time.Second}).Get("http://" + srv.HTTPAddr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == nethttp.StatusOK {
			t.Fatal("the API answered in clear on its TLS port")
		}
	}

	ctx := context.Background()
	o := c2.Origin{Actor: "test"}
	svc := srv.Service()
	f := registerOnly(t, srv, "tls-device", domain.RoleBoth, nil)
	if _, err := svc.NewTopic(ctx, o, "secure/t"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.NewTopicClient(ctx, o, c2.ByName(f.name), "secure/t"); err != nil {
		t.Fatal(err)
	}
	d, err := e4mqtt.Connect(ctx, f.c, e4mqtt.Config{BrokerURL: "ssl://" + srv.MQTTAddr(), TLS: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatalf("device over TLS: %v", err)
	}
	defer d.Close()
	eventually(t, "the key over TLS", func() bool { return holds(t, svc, f.c, "secure/t") })
	if _, err := e4mqtt.Connect(ctx, f.c, e4mqtt.Config{BrokerURL: "tcp://" + srv.MQTTAddr(), ConnectTimeout: 2 * time.Second}); err == nil {
		t.Fatal("the broker accepted a clear-text connection on its TLS port")
	}

	// Mutual TLS: no client certificate, no connection.
	mtls := startTLS(filepath.Join(dir, tlsfiles.CACertFile))
	g := registerOnly(t, mtls, "no-cert", domain.RoleBoth, nil)
	if _, err := e4mqtt.Connect(ctx, g.c, e4mqtt.Config{BrokerURL: "ssl://" + mtls.MQTTAddr(), TLS: &tls.Config{RootCAs: pool}, ConnectTimeout: 3 * time.Second}); err == nil {
		t.Fatal("a device without a client certificate connected to a mutual-TLS broker")
	}
}
