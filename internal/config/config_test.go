package config

import (
	"errors"

	"github.com/e4c2/e4c2/internal/tlsfiles"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	if k, p := c.StoreKind(); k != StoreEmbedded || p != filepath.Join("e4c2-data", "e4c2.db") {
		t.Fatalf("StoreKind = %v %q", k, p)
	}
}

func TestValidateRefusesBadCombinations(t *testing.T) {
	cases := map[string]struct {
		mod  func(*Config)
		want string
	}{
		"pq with sk":        {func(c *Config) { c.Suite, c.Mode = "pq", "sk" }, "pq"},
		"unknown suite":     {func(c *Config) { c.Suite = "aes" }, "valid suites"},
		"unknown mode":      {func(c *Config) { c.Mode = "xx" }, "valid modes"},
		"bad broker scheme": {func(c *Config) { c.Broker = "http://x:1" }, "scheme"},
		"creds no broker":   {func(c *Config) { c.BrokerUsername = "u" }, "without an external"},
		"ca on plain":       {func(c *Config) { c.Broker, c.BrokerCAFile = "tcp://h:1883", "ca.pem" }, "plain-text"},
		"bad listen":        {func(c *Config) { c.HTTPListen = "nocolon" }, "http listen"},
		"bad level":         {func(c *Config) { c.LogLevel = "loud" }, "log level"},
		"negative window":   {func(c *Config) { c.DeliveryWindow = -1 }, "window"},
		"monitor queue":     {func(c *Config) { c.Monitor.QueueSize = -1 }, "monitor"},
		"monitor bucket":    {func(c *Config) { c.Monitor.RateBucket.Duration = -time.Second }, "monitor"},
		"monitor group":     {func(c *Config) { c.Monitor.SharedGroup = "a/b" }, "shared_group"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := Default()
			tc.mod(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q: want one line containing %q", err, tc.want)
			}
		})
	}
}

func TestPrecedenceFileThenEnv(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.json")
	if err := os.WriteFile(path, []byte(`{"suite":"fips","mode":"pk","shutdown_timeout":"5s","store":"esdb://h:2113"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Default()
	if err := c.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"E4C2_MODE": "sk", "E4C2_DELIVERY_WINDOW": "8"}
	if err := c.LoadEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if c.Suite != "fips" || c.Mode != "sk" || c.DeliveryWindow != 8 || c.ShutdownTimeout.Duration != 5*time.Second {
		t.Fatalf("got %+v", c)
	}
	if k, _ := c.StoreKind(); k != StoreESDB {
		t.Fatalf("esdb url not recognised")
	}
	if err := os.WriteFile(path, []byte(`{"suit":"fips"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.LoadFile(path); err == nil {
		t.Fatal("unknown field accepted")
	}
}

func TestValidateRefusesClearTextBeyondLoopback(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"api on all interfaces":    func(c *Config) { c.HTTPListen = "0.0.0.0:8080" },
		"api on a LAN address":     func(c *Config) { c.HTTPListen = "192.0.2.10:8080" },
		"broker on all interfaces": func(c *Config) { c.MQTTListen = ":1883" },
	} {
		c := Default()
		mut(&c)
		if err := c.Validate(); !errors.Is(err, tlsfiles.ErrInsecureListen) {
			t.Errorf("%s: Validate = %v, want ErrInsecureListen", name, err)
		}
		c.InsecureListen = true
		if err := c.Validate(); err != nil {
			t.Errorf("%s with --insecure-listen: %v", name, err)
		}
	}
	c := Default()
	c.HTTPListen, c.TLSCertFile, c.TLSKeyFile = "0.0.0.0:8443", "cert.pem", "key.pem"
	c.MQTTListen, c.MQTTTLSCertFile, c.MQTTTLSKeyFile = "0.0.0.0:8883", "cert.pem", "key.pem"
	if err := c.Validate(); err != nil {
		t.Fatalf("TLS on both listeners: %v", err)
	}
	c.TLSKeyFile = ""
	if err := c.Validate(); err == nil {
		t.Fatal("a certificate without its key was accepted")
	}
}

func TestStoreKindJetStream(t *testing.T) {
	for store, want := range map[string]StoreKind{
		"nats://a:4222,nats://b:4222?replicas=3": StoreJetStream,
		"tls://nats.example:4222":                StoreJetStream,
		"esdb://h:2113":                          StoreESDB,
		"/var/lib/e4c2/e4c2.db":                  StoreEmbedded,
		"":                                       StoreEmbedded,
	} {
		c := Default()
		c.Store = store
		if k, where := c.StoreKind(); k != want || (want != StoreEmbedded && where != store) {
			t.Errorf("StoreKind(%q) = %v %q, want %v", store, k, where, want)
		}
	}
}

// The integrated mode's settings are checked: an empty route address, a
// store beside it, a peer that is no nats:// URL, routes beyond loopback
// without --insecure-listen, and replicas beyond the nodes are refused.
func TestValidateCluster(t *testing.T) {
	base := func() Config {
		c := Default()
		c.Cluster = ClusterConfig{Enabled: true, Listen: "127.0.0.1:6222",
			Peers: []string{"nats://127.0.0.1:6223", "nats://127.0.0.1:6224"}}
		return c
	}
	if c := base(); c.Validate() != nil {
		t.Fatalf("valid cluster config refused: %v", c.Validate())
	}
	if c := base(); c.Cluster.EffectiveReplicas() != 3 {
		t.Fatalf("replicas %d, want 3", c.Cluster.EffectiveReplicas())
	}
	two := base()
	two.Cluster.Peers = two.Cluster.Peers[:1]
	if two.Cluster.EffectiveReplicas() != 2 {
		t.Fatalf("two nodes: replicas %d, want 2", two.Cluster.EffectiveReplicas())
	}
	if c := base(); !c.SharedStore() {
		t.Fatal("cluster mode is a shared store")
	}
	bad := map[string]func(*Config){
		"no listen":      func(c *Config) { c.Cluster.Listen = "" },
		"store":          func(c *Config) { c.Store = "nats://x:4222" },
		"peer scheme":    func(c *Config) { c.Cluster.Peers = []string{"tcp://127.0.0.1:6223"} },
		"public route":   func(c *Config) { c.Cluster.Listen = "0.0.0.0:6222" },
		"public client":  func(c *Config) { c.Cluster.ClientListen = "0.0.0.0:4222" },
		"replicas > n":   func(c *Config) { c.Cluster.Peers = nil; c.Cluster.Replicas = 3 },
		"replicas < 0":   func(c *Config) { c.Cluster.Replicas = -1 },
		"listen garbage": func(c *Config) { c.Cluster.Listen = "nope" },
		"tls cert only":  func(c *Config) { c.Cluster.TLSCertFile = "n.crt" },
		"tls no CA":      func(c *Config) { c.Cluster.TLSCertFile, c.Cluster.TLSKeyFile = "n.crt", "n.key" },
		"tls no cert":    func(c *Config) { c.Cluster.TLSKeyFile, c.Cluster.TLSCAFile = "n.key", "ca.crt" },
		"public route, secret only": func(c *Config) {
			c.Cluster.Listen, c.Cluster.SecretFile = "0.0.0.0:6222", "route.secret"
		},
		"public client with route tls": func(c *Config) {
			c.Cluster.TLSCertFile, c.Cluster.TLSKeyFile, c.Cluster.TLSCAFile = "n.crt", "n.key", "ca.crt"
			c.Cluster.ClientListen = "0.0.0.0:4222"
		},
		"peer credentials": func(c *Config) { c.Cluster.Peers = []string{"nats://u:p@127.0.0.1:6223"} },
	}
	for name, mutate := range bad {
		c := base()
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := base()
	c.Cluster.Listen = "0.0.0.0:6222"
	c.InsecureListen = true
	if err := c.Validate(); err != nil {
		t.Errorf("routes beyond loopback with --insecure-listen: %v", err)
	}
	c = base()
	c.Cluster.Listen = "0.0.0.0:6222"
	c.Cluster.TLSCertFile, c.Cluster.TLSKeyFile, c.Cluster.TLSCAFile = "n.crt", "n.key", "ca.crt"
	if err := c.Validate(); err != nil {
		t.Errorf("routes beyond loopback with route TLS: %v", err)
	}
	c.Cluster.Peers = []string{"nats://u:hunter2@127.0.0.1:6223"}
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("peer URL with a password: %v", err)
	}
}
