package server

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/natsnode"
	"github.com/e4c2/e4c2/internal/testbroker"
	"github.com/e4c2/e4c2/internal/tlsfiles"
)

// TestIntegratedClusterBinaryTLS runs the integrated mode with mutual TLS
// and a shared secret on the routes, through the built binary's flags:
// certificates from `e4c2 cluster-certs`, node 1's routes listening on
// every interface without --insecure-listen (route TLS allows it), the
// others on loopback. The three form the cluster and serve one log (a
// write through the first is read through the third); the route listener
// refuses a TLS client without a certificate; and neither the secret, nor
// the password derived from it, nor a private key appears in the
// processes' output, their /readyz answers or their command lines.
func TestIntegratedClusterBinaryTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three processes: not in -short")
	}
	bin := buildE4c2(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	t.Setenv("E4C2_TEST_CLUSTER_MASTER", hex.EncodeToString(key))
	cfgs := clusterConfigs(t, 3, "E4C2_TEST_CLUSTER_MASTER")

	certs := filepath.Join(t.TempDir(), "certs")
	var names []string
	for _, c := range cfgs {
		names = append(names, c.InstanceID)
	}
	if out, err := exec.Command(bin, "cluster-certs", "--out", certs, "--nodes", strings.Join(names, ",")).CombinedOutput(); err != nil {
		t.Fatalf("cluster-certs: %v\n%s", err, out)
	}
	secret := "route-secret-" + hex.EncodeToString(key[:12])
	secretFile := filepath.Join(t.TempDir(), "route.secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Node 1 listens on every interface; its peers dial it on loopback.
	_, port, _ := net.SplitHostPort(cfgs[0].Cluster.Listen)
	listen := []string{"0.0.0.0:" + port, cfgs[1].Cluster.Listen, cfgs[2].Cluster.Listen}

	procs := make([]*proc, 3)
	bases := make([]string, 3)
	for i, cfg := range cfgs {
		bases[i] = "http://" + testbroker.FreeAddr(t)
		procs[i] = startProc(t, bin, "serve", "--data-dir", cfg.DataDir, "--log-level", "debug",
			"--http-listen", strings.TrimPrefix(bases[i], "http://"), "--mqtt-listen", testbroker.FreeAddr(t),
			"--master-key-env", cfg.MasterKeyEnv, "--instance-id", cfg.InstanceID,
			"--cluster", "--cluster-listen", listen[i], "--cluster-client-listen", "127.0.0.1:0",
			"--cluster-peers", strings.Join(cfg.Cluster.Peers, ","),
			"--cluster-tls-cert", filepath.Join(certs, cfg.InstanceID+".crt"),
			"--cluster-tls-key", filepath.Join(certs, cfg.InstanceID+".key"),
			"--cluster-tls-ca", filepath.Join(certs, tlsfiles.CACertFile),
			"--cluster-secret-file", secretFile)
	}
	for i, p := range procs {
		waitHealthy(t, bases[i], p)
	}
	var token string
	for _, p := range procs {
		if _, tok, ok := strings.Cut(p.stdout.String(), "admin API token (shown once; store it now, e.g. export E4C2_TOKEN=...):\n"); ok {
			token, _, _ = strings.Cut(tok, "\n")
		}
	}
	if token == "" {
		t.Fatal("no process printed the first admin token")
	}
	pos := clusterWrite(t, bases[0], token, "tls/one")
	clusterRead(t, bases[2], token, "tls/one", pos)
	refusesAnonymousTLS(t, cfgs[0].Cluster.Listen)

	var seen []string
	for i, p := range procs {
		_, body := httpDo(t, nethttp.MethodGet, bases[i]+"/readyz", "", nil)
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.cmd.Process.Pid))
		seen = append(seen, string(body), string(cmdline))
	}
	for _, p := range procs {
		stopProc(t, p, 20*time.Second)
		seen = append(seen, p.stdout.String(), p.stderr.String())
	}
	if !strings.Contains(strings.Join(seen, ""), `"route_tls":true,"route_secret":true`) {
		t.Error("no log line says the routes have TLS and a secret")
	}
	checkNoSecrets(t, seen, secret, certs)
}

// refusesAnonymousTLS: the route listener at addr completes no exchange
// with a TLS client that presents no certificate (it trusts the server).
func refusesAnonymousTLS(t *testing.T, addr string) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the test plays a client that verifies nothing
	if err == nil {
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = bufio.NewReader(c).ReadString('\n')
	}
	if err == nil {
		t.Fatalf("the route listener %s talked to a TLS client without a certificate", addr)
	}
}

// checkNoSecrets fails if any of texts holds the route secret, the route
// password derived from it, a PEM private key header or a line of a key
// file of dir.
func checkNoSecrets(t *testing.T, texts []string, secret, dir string) {
	t.Helper()
	needles := []string{secret, natsnode.RoutePassword([]byte(secret)), "PRIVATE KEY"}
	keys, _ := filepath.Glob(filepath.Join(dir, "*.key"))
	if len(keys) == 0 {
		t.Fatal("no key files to look for")
	}
	for _, k := range keys {
		b, err := os.ReadFile(k)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			if line = strings.TrimSpace(line); len(line) >= 16 && !strings.HasPrefix(line, "-----") {
				needles = append(needles, line)
			}
		}
	}
	for i, text := range texts {
		for _, n := range needles {
			if strings.Contains(text, n) {
				t.Errorf("text %d (of %d: readyz, command line, stdout, stderr) holds a secret %.12q...", i, len(texts), n)
			}
		}
	}
}

// readClusterSecret refuses files that group or others may access, secrets
// shorter than MinClusterSecret and what is not a regular file, naming
// the file and never its contents; it trims surrounding white space.
func TestReadClusterSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "  a-secret-of-24-bytes-ok\n", 0o600)
	got, err := readClusterSecret(good)
	if err != nil || string(got) != "a-secret-of-24-bytes-ok" {
		t.Fatalf("owner-only secret: %q, %v", got, err)
	}
	if _, err := readClusterSecret(write("ro", "a-secret-of-24-bytes-ok", 0o400)); err != nil {
		t.Fatalf("0400 secret: %v", err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o644} {
		name := "m" + strconv.FormatUint(uint64(mode), 8)
		_, err := readClusterSecret(write(name, "a-secret-of-24-bytes-ok", mode))
		if !errors.Is(err, ErrInsecureSecretFile) || !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), "a-secret") {
			t.Errorf("mode %04o: %v, want ErrInsecureSecretFile naming the file", mode, err)
		}
	}
	if _, err := readClusterSecret(write("short", "tiny-secret\n", 0o600)); err == nil || strings.Contains(err.Error(), "tiny") {
		t.Errorf("short secret: %v", err)
	}
	if _, err := readClusterSecret(dir); err == nil {
		t.Error("a directory accepted as the secret file")
	}
	if _, err := readClusterSecret(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	tc, secret, err := routeSecurity(config.ClusterConfig{SecretFile: good})
	if tc != nil || string(secret) != "a-secret-of-24-bytes-ok" || err != nil {
		t.Errorf("routeSecurity with a secret only: %v %q %v", tc, secret, err)
	}
}
