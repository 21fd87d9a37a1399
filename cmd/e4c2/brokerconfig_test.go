package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/client/credential"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore/boltstore"
	"github.com/e4c2/e4c2/eventstore/sealing"
	"github.com/e4c2/e4c2/internal/mosquittocfg"
	"github.com/e4c2/e4c2/internal/testbroker"
	"github.com/e4c2/e4c2/internal/testwait"
	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/standard"
	"github.com/e4c2/e4c2/transport/mqtt"
)

// bcDevice is a device of the broker-config test: its id and the SK key it
// holds.
type bcDevice struct {
	name string
	id   domain.ID
	key  []byte
}

func (d bcDevice) user() string     { return credential.Username(d.id[:]) }
func (d bcDevice) password() string { return credential.SKPassword(d.key, d.id[:]) }

// buildBrokerConfigStore makes a data directory (embedded store and master
// key file, as serve lays them out) holding, through the C2 service:
// "cons" (consumer) and "pub" (publisher) on topic "t/a", "both" on
// "t/room 1", and "rot", whose key was rotated with the SetIdKey still
// queued (the device still holds its first key).
func buildBrokerConfigStore(t *testing.T) (dir string, devs map[string]bcDevice) {
	t.Helper()
	ctx := context.Background()
	dir = t.TempDir()
	mk := make([]byte, 32)
	rand.Read(mk)
	if err := os.WriteFile(filepath.Join(dir, "master.key"), []byte(hex.EncodeToString(mk)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	svc, done := openBCService(t, dir, core.SymKey)
	o := c2.Origin{Actor: "cli:test"}
	must := func(_ c2.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	devs = map[string]bcDevice{}
	for name, role := range map[string]domain.Role{"cons": domain.RoleConsumer, "pub": domain.RolePublisher, "both": domain.RoleBoth, "rot": domain.RoleBoth} {
		devs[name] = addBCDevice(t, svc, name, role)
	}
	for _, tp := range []string{"t/a", "t/room 1"} {
		must(svc.NewTopic(ctx, o, tp))
	}
	must(svc.NewTopicClient(ctx, o, c2.ByName("cons"), "t/a"))
	must(svc.NewTopicClient(ctx, o, c2.ByName("pub"), "t/a"))
	must(svc.NewTopicClient(ctx, o, c2.ByName("both"), "t/room 1"))
	must(svc.NewClientKey(ctx, o, c2.ByName("rot")))
	done()
	return dir, devs
}

// openBCService opens the C2 service on the data directory's store and
// master key as serve would; done closes everything (the store must be
// free for the offline command).
func openBCService(t *testing.T, dir string, mode core.Mode) (svc *c2.Service, done func()) {
	t.Helper()
	ctx := context.Background()
	master, err := sealing.LoadMasterKeyFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(filepath.Join(dir, "e4c2.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := sealing.OpenKeyring(ctx, st, master)
	master.Destroy()
	if err != nil {
		t.Fatal(err)
	}
	svc, err = c2.New(c2.Config{Store: st, Sealer: kr, Suite: standard.New(), Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	return svc, func() {
		t.Helper()
		for _, c := range []interface{ Close() error }{svc, kr, st} {
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// addBCDevice registers an SK client with a random key.
func addBCDevice(t *testing.T, svc *c2.Service, name string, role domain.Role) bcDevice {
	t.Helper()
	d := bcDevice{name: name, id: domain.ClientID(name), key: make([]byte, 32)}
	rand.Read(d.key)
	if _, err := svc.NewClient(context.Background(), c2.Origin{Actor: "cli:test"}, c2.ByName(name), d.key, role); err != nil {
		t.Fatal(err)
	}
	return d
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, strings.NewReader(""), &o, &e)
	return code, o.String(), e.String()
}

// startGeneratedMosquitto runs mosquitto with the generated snippet (which
// holds the listener) and nothing but logging added.
func startGeneratedMosquitto(t *testing.T, out, addr string) *os.Process {
	t.Helper()
	snippet, err := os.ReadFile(filepath.Join(out, mosquittocfg.SnippetFileName))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(snippet) + fmt.Sprintf("log_dest file %s\npersistence false\n", filepath.Join(out, "mosquitto.log"))
	if os.Geteuid() == 0 {
		conf += "user root\n" // the generated files are 0600, owned by us
	}
	confPath := filepath.Join(out, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testbroker.MosquittoPath, "-c", confPath)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(out, "mosquitto.log"))
			t.Logf("mosquitto log:\n%s", log)
		}
	})
	testbroker.WaitPort(t, addr, true)
	return cmd.Process
}

// mqttConn is a paho client that records what it receives.
type mqttConn struct {
	c    paho.Client
	mu   sync.Mutex
	got  []string // "topic payload"
	lost chan struct{}
}

func mqttConnect(t *testing.T, url, user, pass, clientID string) (*mqttConn, error) {
	t.Helper()
	m := &mqttConn{lost: make(chan struct{})}
	var once sync.Once
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(clientID).
		SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).
		SetDefaultPublishHandler(func(_ paho.Client, msg paho.Message) {
			m.mu.Lock()
			m.got = append(m.got, msg.Topic()+" "+string(msg.Payload()))
			m.mu.Unlock()
		}).
		SetConnectionLostHandler(func(paho.Client, error) { once.Do(func() { close(m.lost) }) })
	if user != "" {
		opts.SetUsername(user).SetPassword(pass)
	}
	m.c = paho.NewClient(opts)
	tok := m.c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { m.c.Disconnect(100) })
	return m, nil
}

func (m *mqttConn) subscribe(t *testing.T, filters ...string) {
	t.Helper()
	for _, f := range filters {
		tok := m.c.Subscribe(f, 1, nil)
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %q: %v", f, tok.Error())
		}
	}
}

func (m *mqttConn) publish(t *testing.T, topic, payload string) {
	t.Helper()
	tok := m.c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %q: %v", topic, tok.Error())
	}
}

// waitFor waits until a message "topic payload" arrives and returns all
// received so far; the test fails after a bounded wait.
func (m *mqttConn) waitFor(t *testing.T, want string) []string {
	t.Helper()
	var got []string
	arrived := false
	defer func() {
		// Runs on testwait's Fatal too (Goexit runs deferred calls): what
		// arrived instead says more than the timeout.
		if !arrived {
			t.Logf("received while waiting for %q: %q", want, got)
		}
	}()
	testwait.For(t, fmt.Sprintf("%q to arrive", want), func() bool {
		m.mu.Lock()
		got = append([]string(nil), m.got...)
		m.mu.Unlock()
		return slices.Contains(got, want)
	})
	arrived = true
	return got
}

func TestBrokerConfigMosquitto(t *testing.T) {
	if _, err := os.Stat(testbroker.MosquittoPath); err != nil {
		t.Skipf("mosquitto is not installed at %s (apt-get install mosquitto; .ci/run does it)", testbroker.MosquittoPath)
	}
	dir, devs := buildBrokerConfigStore(t)
	cons, pub, both, rot := devs["cons"], devs["pub"], devs["both"], devs["rot"]
	const c2Pass = "c2 broker password"
	pwFile := filepath.Join(dir, "c2.password")
	if err := os.WriteFile(pwFile, []byte(c2Pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := testbroker.FreeAddr(t)
	out := filepath.Join(dir, "mosquitto")
	args := []string{"broker-config", "--data-dir", dir, "--out", out,
		"--c2-username", "e4c2", "--c2-password-file", pwFile, "--listener", addr}
	code, stdout, stderr := runCLI(args...)
	if code != 0 {
		t.Fatalf("broker-config: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, `C2 user "e4c2" and 4 SK devices`) {
		t.Errorf("stdout:\n%s", stdout)
	}
	for _, secret := range []string{c2Pass, cons.password(), rot.password(), hex.EncodeToString(cons.key)} {
		if strings.Contains(stdout+stderr, secret) {
			t.Fatal("broker-config printed a secret")
		}
	}
	for _, n := range []string{mosquittocfg.PasswordFileName, mosquittocfg.ACLFileName, mosquittocfg.SnippetFileName} {
		fi, err := os.Stat(filepath.Join(out, n))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %#o, want 0600", n, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(filepath.Join(out, n))
		if bytes.Contains(b, []byte(cons.password())) || bytes.Contains(b, []byte(c2Pass)) {
			t.Errorf("%s holds a password in clear", n)
		}
	}
	// A second run refuses to overwrite without --force.
	code, _, stderr = runCLI(args...)
	if code == 0 || !strings.Contains(stderr, "e4c2: error: ") || !strings.Contains(stderr, "already exists") || !strings.Contains(stderr, "--force") {
		t.Errorf("rerun without --force: exit %d, stderr %q", code, stderr)
	}
	if code, stdout, stderr := runCLI(append(args, "--force")...); code != 0 {
		t.Fatalf("rerun with --force: exit %d\n%s%s", code, stdout, stderr)
	}

	broker := startGeneratedMosquitto(t, out, addr)
	url := "tcp://" + addr
	connect := func(user, pass, clientID string) *mqttConn {
		t.Helper()
		m, err := mqttConnect(t, url, user, pass, clientID)
		if err != nil {
			t.Fatalf("%s cannot connect: %v", clientID, err)
		}
		return m
	}
	c2c := connect("e4c2", c2Pass, "e4c2-test")

	t.Run("refused", func(t *testing.T) {
		for name, cr := range map[string][2]string{
			"no credential":                        {"", ""},
			"wrong password":                       {cons.user(), strings.Repeat("0", 64)},
			"another device's user":                {pub.user(), cons.password()},
			"the C2 with a wrong pass":             {"e4c2", c2Pass + "x"},
			"rotated key before SetIdKey delivery": {rot.user(), credential.SKPassword(bytes.Repeat([]byte{1}, 32), rot.id[:])},
		} {
			if m, err := mqttConnect(t, url, cr[0], cr[1], "e4dev-"+cr[0]); err == nil {
				m.c.Disconnect(0)
				t.Errorf("%s: connection accepted", name)
			}
		}
	})

	t.Run("device receives its control topic and its topics", func(t *testing.T) {
		d := connect(cons.user(), cons.password(), credential.ClientID(cons.id[:]))
		d.subscribe(t, core.ControlTopic(cons.id[:]), "t/a")
		c2c.publish(t, core.ControlTopic(cons.id[:]), "cmd")
		c2c.publish(t, "t/a", "hello")
		d.waitFor(t, core.ControlTopic(cons.id[:])+" cmd")
		d.waitFor(t, "t/a hello")
		// A topic name with a space is granted too.
		b := connect(both.user(), both.password(), credential.ClientID(both.id[:]))
		b.subscribe(t, "t/room 1")
		c2c.publish(t, "t/room 1", "spaced")
		b.waitFor(t, "t/room 1 spaced")
		// The rotated device still holds its first key: its queued
		// SetIdKey is protected under it.
		connect(rot.user(), rot.password(), credential.ClientID(rot.id[:]))
	})

	t.Run("wildcards and other devices' topics deliver nothing", func(t *testing.T) {
		d := connect(cons.user(), cons.password(), credential.ClientID(cons.id[:]))
		d.subscribe(t, "#", "e4/#", core.ControlTopic(pub.id[:]), "e4c2ack/#", "t/room 1")
		c2c.publish(t, core.ControlTopic(pub.id[:]), "not for cons")
		c2c.publish(t, mosquittocfg.AckTopicPrefix+pub.user(), "not for cons")
		c2c.publish(t, "t/room 1", "not for cons")
		c2c.publish(t, "other/topic", "not for cons")
		c2c.publish(t, "t/a", "sentinel") // same publisher: delivered after the others
		time.Sleep(200 * time.Millisecond)
		for _, g := range d.waitFor(t, "t/a sentinel") {
			if g != "t/a sentinel" {
				t.Errorf("consumer received %q", g)
			}
		}
	})

	t.Run("publishes outside the grants are dropped", func(t *testing.T) {
		// The C2's own connection watches: a second connection with its
		// username would take its session (use_username_as_clientid).
		watch := c2c
		watch.subscribe(t, "#")
		defer func() {
			if tok := c2c.c.Unsubscribe("#"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("unsubscribe: %v", tok.Error())
			}
		}()
		d := connect(cons.user(), cons.password(), credential.ClientID(cons.id[:]))
		d.publish(t, "t/a", "consumer may not publish")
		d.publish(t, core.ControlTopic(cons.id[:]), "no write on own control topic")
		d.publish(t, mosquittocfg.AckTopicPrefix+pub.user(), "not its ack topic")
		d.publish(t, mosquittocfg.AckTopicPrefix+cons.user(), "ack") // allowed
		p := connect(pub.user(), pub.password(), credential.ClientID(pub.id[:]))
		p.publish(t, "t/a", "from publisher") // allowed
		watch.waitFor(t, "e4c2ack/"+cons.user()+" ack")
		watch.waitFor(t, "t/a from publisher")
		time.Sleep(300 * time.Millisecond)
		watch.mu.Lock()
		defer watch.mu.Unlock()
		for _, g := range watch.got {
			if g != "e4c2ack/"+cons.user()+" ack" && g != "t/a from publisher" {
				t.Errorf("a forbidden publish went through: %q", g)
			}
		}
	})

	t.Run("another credential cannot take a device's session", func(t *testing.T) {
		d := connect(cons.user(), cons.password(), credential.ClientID(cons.id[:]))
		// pub's credential, cons's client id: with use_username_as_clientid
		// mosquitto gives it pub's session, and cons stays connected.
		connect(pub.user(), pub.password(), credential.ClientID(cons.id[:]))
		select {
		case <-d.lost:
			t.Fatal("the device was disconnected by another credential using its client id")
		case <-time.After(300 * time.Millisecond):
		}
		if !d.c.IsConnectionOpen() {
			t.Fatal("device connection closed")
		}
	})
	t.Run("regenerate and SIGHUP after a change", func(t *testing.T) {
		d := connect(cons.user(), cons.password(), credential.ClientID(cons.id[:]))
		d.subscribe(t, "t/a")
		svc, done := openBCService(t, dir, core.SymKey)
		late := addBCDevice(t, svc, "late", domain.RoleConsumer)
		if _, err := svc.NewTopicClient(context.Background(), c2.Origin{}, c2.ByName("late"), "t/a"); err != nil {
			t.Fatal(err)
		}
		done()
		if _, err := mqttConnect(t, url, late.user(), late.password(), credential.ClientID(late.id[:])); err == nil {
			t.Fatal("a client unknown to the generated files connected")
		}
		if code, stdout, stderr := runCLI(append(args, "--force")...); code != 0 {
			t.Fatalf("regenerate: exit %d\n%s%s", code, stdout, stderr)
		}
		if err := broker.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		var l *mqttConn
		deadline := time.Now().Add(30 * time.Second)
		for {
			var err error
			if l, err = mqttConnect(t, url, late.user(), late.password(), credential.ClientID(late.id[:])); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the new client is refused after the reload: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		l.subscribe(t, "t/a")
		c2c.publish(t, "t/a", "after reload")
		l.waitFor(t, "t/a after reload")
		d.waitFor(t, "t/a after reload") // connected clients stay connected
	})
}

// The command's own errors are one line with a hint, before the store is
// opened.
func TestBrokerConfigFlagErrors(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no out":        {[]string{"--c2-username", "c2", "--c2-password-file", pw}, "--out is required"},
		"bad user":      {[]string{"--out", dir, "--c2-username", strings.Repeat("ab", 16), "--c2-password-file", pw}, "device username"},
		"no pass file":  {[]string{"--out", dir, "--c2-username", "c2"}, "--c2-password-file is required"},
		"empty pass":    {[]string{"--out", dir, "--c2-username", "c2", "--c2-password-file", pw}, "is empty"},
		"bad listener":  {[]string{"--out", dir, "--c2-username", "c2", "--c2-password-file", good, "--listener", "1883\nallow_anonymous true"}, "--listener"},
		"missing pass":  {[]string{"--out", dir, "--c2-username", "c2", "--c2-password-file", filepath.Join(dir, "nope")}, "no such file"},
		"missing store": {[]string{"--out", dir, "--c2-username", "c2", "--c2-password-file", good}, "no store at"},
	} {
		code, _, stderr := runCLI(append([]string{"broker-config", "--data-dir", dir}, tc.args...)...)
		if code == 0 || !strings.HasPrefix(stderr, "e4c2: error: ") || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "e4c2: hint: ") {
			t.Errorf("%s: exit %d, stderr %q", name, code, stderr)
		}
	}
}

// bcPKI is a throw-away CA with a broker certificate for 127.0.0.1 and
// client certificates by Common Name, as PEM files in a directory.
type bcPKI struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
}

func newBCPKI(t *testing.T, dir string) *bcPKI {
	t.Helper()
	p := &bcPKI{dir: dir}
	p.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e4c2 test device CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.serial = 1
	p.write(t, "ca.crt", "CERTIFICATE", der)
	return p
}

func (p *bcPKI) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue returns the certificate and key files of cn (a server certificate
// for 127.0.0.1 when server is set).
func (p *bcPKI) issue(t *testing.T, cn string, server bool) (tls.Certificate, string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	crt := p.write(t, cn+".crt", "CERTIFICATE", der)
	kf := p.write(t, cn+".key", "EC PRIVATE KEY", kder)
	pair, err := tls.LoadX509KeyPair(crt, kf)
	if err != nil {
		t.Fatal(err)
	}
	return pair, crt, kf
}

// PK devices get ACL lines and no password line; the documented TLS client
// certificate listener (use_identity_as_username, CN = hex id) then
// confines them like SK devices.
func TestBrokerConfigMosquittoPKClientCert(t *testing.T) {
	if _, err := os.Stat(testbroker.MosquittoPath); err != nil {
		t.Skipf("mosquitto is not installed at %s (apt-get install mosquitto; .ci/run does it)", testbroker.MosquittoPath)
	}
	ctx := context.Background()
	dir := t.TempDir()
	mk := make([]byte, 32)
	rand.Read(mk)
	if err := os.WriteFile(filepath.Join(dir, "master.key"), []byte(hex.EncodeToString(mk)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	svc, done := openBCService(t, dir, core.PubKey)
	pk := svc.Suite().(core.PKSuite)
	ids := map[string][]byte{}
	for _, name := range []string{"pkdev", "pkother"} {
		ident, err := pk.GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.NewClient(ctx, c2.Origin{}, c2.ByName(name), ident.PublicKey(), domain.RoleConsumer); err != nil {
			t.Fatal(err)
		}
		id := domain.ClientID(name)
		ids[name] = id[:]
	}
	if _, err := svc.NewTopic(ctx, c2.Origin{}, "t/pk"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.NewTopicClient(ctx, c2.Origin{}, c2.ByName("pkdev"), "t/pk"); err != nil {
		t.Fatal(err)
	}
	done()
	// A PK-only log needs no master key: there is no SK password to compute.
	if err := os.Remove(filepath.Join(dir, "master.key")); err != nil {
		t.Fatal(err)
	}

	pwFile := filepath.Join(dir, "c2.password")
	if err := os.WriteFile(pwFile, []byte("c2pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := testbroker.FreeAddr(t)
	out := filepath.Join(dir, "mosquitto")
	code, stdout, stderr := runCLI("broker-config", "--data-dir", dir, "--out", out,
		"--c2-username", "e4c2", "--c2-password-file", pwFile, "--listener", addr)
	if code != 0 {
		t.Fatalf("broker-config: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "2 PK devices have ACL lines but no password") || !strings.Contains(stdout, "and 0 SK devices") {
		t.Errorf("stdout:\n%s", stdout)
	}
	pwLines, _ := os.ReadFile(filepath.Join(out, mosquittocfg.PasswordFileName))
	if n := strings.Count(string(pwLines), ":$7$"); n != 1 {
		t.Errorf("%d password lines, want the C2's only:\n%s", n, pwLines)
	}

	// The certificate listener, as docs/external-broker.md shows it.
	pki := newBCPKI(t, t.TempDir())
	_, srvCrt, srvKey := pki.issue(t, "broker", true)
	devCert, _, _ := pki.issue(t, credential.Username(ids["pkdev"]), false)
	tlsAddr := testbroker.FreeAddr(t)
	_, tlsPort, _ := net.SplitHostPort(tlsAddr)
	f, err := os.OpenFile(filepath.Join(out, mosquittocfg.SnippetFileName), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "\nlistener %s 127.0.0.1\nuse_username_as_clientid true\ncafile %s\ncertfile %s\nkeyfile %s\n"+
		"require_certificate true\nuse_identity_as_username true\n", tlsPort, filepath.Join(pki.dir, "ca.crt"), srvCrt, srvKey)
	f.Close()
	startGeneratedMosquitto(t, out, addr)
	testbroker.WaitPort(t, tlsAddr, true)

	c2c, err := mqttConnect(t, "tcp://"+addr, "e4c2", "c2pw", "e4c2")
	if err != nil {
		t.Fatal(err)
	}
	// Over the password listener a PK device has no password to give.
	user := credential.Username(ids["pkdev"])
	for _, pw := range []string{"", "anything"} {
		if m, err := mqttConnect(t, "tcp://"+addr, user, pw, "e4dev-"+user); err == nil {
			m.c.Disconnect(0)
			t.Errorf("PK device accepted on the password listener with password %q", pw)
		}
	}

	pool := x509.NewCertPool()
	pool.AddCert(pki.ca)
	tlsConnect := func(certs []tls.Certificate) (*mqttConn, error) {
		m := &mqttConn{lost: make(chan struct{})}
		opts := paho.NewClientOptions().AddBroker("ssl://" + tlsAddr).SetClientID("e4dev-" + user).
			SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
			SetTLSConfig(&tls.Config{RootCAs: pool, Certificates: certs, MinVersion: tls.VersionTLS12}).
			SetDefaultPublishHandler(func(_ paho.Client, msg paho.Message) {
				m.mu.Lock()
				m.got = append(m.got, msg.Topic()+" "+string(msg.Payload()))
				m.mu.Unlock()
			})
		m.c = paho.NewClient(opts)
		tok := m.c.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			return nil, fmt.Errorf("connect timed out")
		}
		if err := tok.Error(); err != nil {
			return nil, err
		}
		t.Cleanup(func() { m.c.Disconnect(100) })
		return m, nil
	}
	if m, err := tlsConnect(nil); err == nil {
		m.c.Disconnect(0)
		t.Error("connection without a client certificate accepted")
	}
	d, err := tlsConnect([]tls.Certificate{devCert})
	if err != nil {
		t.Fatalf("PK device with its certificate: %v", err)
	}
	own, other := core.ControlTopic(ids["pkdev"]), core.ControlTopic(ids["pkother"])
	d.subscribe(t, own, other, "#", "t/pk")
	c2c.publish(t, other, "not for pkdev")
	c2c.publish(t, own, "cmd")
	c2c.publish(t, "t/pk", "hello")
	got := d.waitFor(t, "t/pk hello")
	time.Sleep(200 * time.Millisecond)
	d.mu.Lock()
	got = append(got[:0:0], d.got...)
	d.mu.Unlock()
	for _, g := range got {
		if g != own+" cmd" && g != "t/pk hello" {
			t.Errorf("PK device received %q", g)
		}
	}
	if !slices.Contains(got, own+" cmd") {
		t.Errorf("PK device did not receive its control topic: %q", got)
	}
}

// TestBrokerConfigMosquittoSightings: with --sightings, the generated files
// make the real mosquitto publish its subscription log, which the C2 (and
// only the C2) may read; a device subscribing to its control topic shows
// there under its authenticated username, whatever client id it presents,
// and the C2's parser (serve --broker-log-sightings) names that device.
func TestBrokerConfigMosquittoSightings(t *testing.T) {
	if _, err := os.Stat(testbroker.MosquittoPath); err != nil {
		t.Skipf("mosquitto is not installed at %s (apt-get install mosquitto; .ci/run does it)", testbroker.MosquittoPath)
	}
	dir, devs := buildBrokerConfigStore(t)
	cons, pub := devs["cons"], devs["pub"]
	const c2Pass = "c2 broker password"
	pwFile := filepath.Join(dir, "c2.password")
	if err := os.WriteFile(pwFile, []byte(c2Pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := testbroker.FreeAddr(t)
	out := filepath.Join(dir, "mosquitto")
	if code, stdout, stderr := runCLI("broker-config", "--data-dir", dir, "--out", out, "--c2-username", "e4c2",
		"--c2-password-file", pwFile, "--listener", addr, "--sightings"); code != 0 {
		t.Fatalf("broker-config: exit %d\n%s%s", code, stdout, stderr)
	}
	startGeneratedMosquitto(t, out, addr)
	url := "tcp://" + addr
	c2c, err := mqttConnect(t, url, "e4c2", c2Pass, "e4c2-test")
	if err != nil {
		t.Fatal(err)
	}
	c2c.subscribe(t, mqtt.SubscribeLogTopic)
	spy, err := mqttConnect(t, url, pub.user(), pub.password(), credential.ClientID(pub.id[:]))
	if err != nil {
		t.Fatal(err)
	}
	spy.subscribe(t, mqtt.SubscribeLogTopic, core.ControlTopic(pub.id[:])) // SUBACK, but the ACL gives a device nothing of $SYS

	// The device claims another device's client id: the log still names it.
	d, err := mqttConnect(t, url, cons.user(), cons.password(), credential.ClientID(pub.id[:]))
	if err != nil {
		t.Fatal(err)
	}
	d.subscribe(t, core.ControlTopic(cons.id[:]))
	deadline := time.Now().Add(30 * time.Second)
	for {
		c2c.mu.Lock()
		got := slices.Clone(c2c.got)
		c2c.mu.Unlock()
		var seen [][16]byte
		for _, g := range got {
			if payload, ok := strings.CutPrefix(g, mqtt.SubscribeLogTopic+" "); ok {
				if id, ok := mqtt.ParseSubscribeLog([]byte(payload)); ok {
					seen = append(seen, id)
				}
			}
		}
		// The spy subscribing to its own control topic is a sighting of
		// it; nothing else but the device is.
		for _, id := range seen {
			if id != [16]byte(cons.id) && id != [16]byte(pub.id) {
				t.Fatalf("sighting of %x; log %q", id, got)
			}
		}
		if slices.Contains(seen, [16]byte(cons.id)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sighting of the device; the C2 got %q", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A barrier: what reaches the spy after the log lines were out.
	ctl := core.ControlTopic(pub.id[:])
	c2c.publish(t, ctl, "barrier")
	if got := spy.waitFor(t, ctl+" barrier"); len(got) != 1 {
		t.Fatalf("a device read the broker's log: %q", got)
	}
}
