package mqtt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/e4c2/e4c2/internal/testwait"
	"github.com/e4c2/e4c2/transport/mqtt/broker"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "e4c2 test broker"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// The embedded broker's TLS listener and the paho publisher's ssl:// mode,
// with the C2 credentials: commands delivered end to end.
func TestDeliverTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	c2 := &broker.Credentials{Username: "e4c2", Password: "tls-test-password"}
	b := startEmbedded(t, broker.Config{
		C2: c2, AllowAnonymous: true,
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	})

	// A publisher that does not trust the certificate never connects.
	untrusted, err := NewPaho(PahoConfig{BrokerURL: "ssl://" + b.Addr(), Username: c2.Username, Password: c2.Password,
		TLS: &tls.Config{MinVersion: tls.VersionTLS12}, ConnectTimeout: time.Second, MaxReconnectInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	if err := untrusted.WaitConnected(ctx); err == nil {
		t.Fatal("connected over TLS without trusting the broker's certificate")
	}
	cancel()
	_ = untrusted.Close()

	pub := newPaho(t, PahoConfig{BrokerURL: "ssl://" + b.Addr(), Username: c2.Username, Password: c2.Password,
		TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MaxInflight: DefaultWindowEmbedded})
	if got := pub.SafeWindow(); got != DefaultWindowEmbedded {
		t.Fatalf("SafeWindow = %d", got)
	}
	src := newFakeSource()
	var all []Item
	for i := range 50 {
		all = append(all, src.enqueue(i%5))
	}
	w := NewWorker(src, pub, integrationConfig())
	runWorker(t, w)
	testwait.For(t, "all delivered", func() bool { return src.count("delivered") == len(all) })
}

func TestNewPahoValidation(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:1883", "tcp://", "::bad"} {
		if p, err := NewPaho(PahoConfig{BrokerURL: u}); err == nil {
			_ = p.Close()
			t.Errorf("NewPaho(%q) accepted", u)
		}
	}
	p, err := NewPaho(PahoConfig{BrokerURL: "tcp://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if id := p.ClientID(); len(id) != len("e4c2-")+16 || id[:5] != "e4c2-" {
		t.Fatalf("default client id %q", id)
	}
	if p.SafeWindow() != DefaultWindowExternal {
		t.Fatalf("default SafeWindow %d", p.SafeWindow())
	}
	if p.Connected() {
		t.Fatal("connected to a closed port")
	}
	if err := p.Publish(context.Background(), "e4/aa", []byte("x")); err == nil {
		t.Fatal("publish while disconnected succeeded")
	} else if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("publish while disconnected: %v, want ErrUnavailable", err)
	}
}

func TestInProcessUnavailable(t *testing.T) {
	b, err := broker.New(broker.Config{Address: "127.0.0.1:0", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	p := NewInProcess(b, 0)
	if p.Connected() || p.SafeWindow() != DefaultWindowEmbedded {
		t.Fatalf("stopped broker: connected %v window %d", p.Connected(), p.SafeWindow())
	}
	if err := p.Publish(context.Background(), "e4/aa", nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("publish to a stopped broker: %v, want ErrUnavailable", err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !p.Connected() {
		t.Fatal("not connected to a running broker")
	}
	if err := p.Publish(context.Background(), "e4/aa", []byte("x")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Publish(ctx, "e4/aa", []byte("x")); err == nil {
		t.Fatal("publish with a cancelled context succeeded")
	}
}
