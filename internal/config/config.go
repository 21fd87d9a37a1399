package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/e4c2/e4c2/internal/tlsfiles"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/e4c2/e4c2/suites"
)

// Config is the whole server configuration.
type Config struct {
	// DataDir holds the embedded store, the master key file and checkpoints.
	DataDir string `json:"data_dir"`
	// Suite is the crypto suite: standard, fips or pq.
	Suite string `json:"suite"`
	// Mode is the key-management mode: sk or pk.
	Mode string `json:"mode"`

	// Store is empty for the embedded store (DataDir/e4c2.db), a file path
	// for another embedded store, an esdb:// / kurrentdb:// URL, or a
	// nats:// / tls:// URL of a NATS JetStream server or cluster.
	Store string `json:"store"`

	// MasterKeyFile is the 0600 file holding the 32-byte master key
	// (default DataDir/master.key, created on first start).
	MasterKeyFile string `json:"master_key_file"`
	// MasterKeyEnv names an environment variable holding the master key
	// (hex or base64); it takes precedence over MasterKeyFile.
	MasterKeyEnv string `json:"master_key_env"`
	// MasterPassphraseFile holds a passphrase the master key is derived
	// from (Argon2id, PBKDF2 under fips); precedence over the others.
	MasterPassphraseFile string `json:"master_passphrase_file"`

	// Broker is empty for the embedded broker, else tcp://, ssl:// or
	// mqtts:// URL of an external one.
	Broker string `json:"broker"`
	// BrokerUsername / BrokerPasswordFile authenticate to an external broker.
	BrokerUsername     string `json:"broker_username"`
	BrokerPasswordFile string `json:"broker_password_file"`
	// BrokerCAFile is a PEM bundle to verify an external broker's TLS
	// certificate (default: the system roots).
	BrokerCAFile string `json:"broker_ca_file"`
	// MQTTListen is the embedded broker's listen address.
	MQTTListen string `json:"mqtt_listen"`
	// DeviceAcks, with an external broker, listens for the device
	// acknowledgement extension (client/ack): devices that send acks get
	// their commands only while online, each confirmed by the device.
	// Devices that send none are held until an operator releases them
	// (e4c2 client release), then served with broker acceptance.
	DeviceAcks bool `json:"device_acks"`
	// DeliverUnseen, with an external broker and no device acks, hands the
	// commands of devices the C2 never saw to the broker at once, as if
	// every device were released (e4c2 client release). Off (the default),
	// they wait in the C2's outbox until the device is seen or released:
	// an external broker keeps no message for a device that never
	// connected. For fleets whose devices can never be seen (reference
	// devices without acks, persistent sessions created out of band).
	DeliverUnseen bool `json:"deliver_unseen"`
	// BrokerLogSightings, with an external mosquitto and no device acks,
	// subscribes to mosquitto's subscription log ($SYS/broker/log/M/
	// subscribe) and counts a device subscribing to its control topic as
	// seen: its held commands go out. The broker must be configured by
	// e4c2 broker-config --sightings (log_dest topic, log_type subscribe,
	// use_username_as_clientid, the C2 may read that topic).
	BrokerLogSightings bool `json:"broker_log_sightings"`
	// MQTTAnonymousRead lists topics that clients without a device
	// credential may subscribe to (never publish on) through the embedded
	// broker. Empty (the default): every connection must be the C2 or an
	// authenticated device.
	MQTTAnonymousRead []string `json:"mqtt_anonymous_read"`
	// DeliveryWindow is the number of unconfirmed publishes (0: per broker
	// kind default).
	DeliveryWindow int `json:"delivery_window"`

	// HTTPListen is the API's listen address.
	HTTPListen string `json:"http_listen"`
	// TLSCertFile and TLSKeyFile serve the HTTP API over TLS (reloaded when
	// the files change or on SIGHUP).
	TLSCertFile string `json:"tls_cert_file"`
	TLSKeyFile  string `json:"tls_key_file"`
	// MQTTTLSCertFile and MQTTTLSKeyFile make the embedded broker's listener
	// TLS-only; MQTTClientCAFile additionally requires device certificates
	// signed by one of its CAs (mutual TLS).
	MQTTTLSCertFile  string `json:"mqtt_tls_cert_file"`
	MQTTTLSKeyFile   string `json:"mqtt_tls_key_file"`
	MQTTClientCAFile string `json:"mqtt_client_ca_file"`
	// AdminTokenFile, if set, receives the first admin token (created
	// 0600, never overwritten) instead of standard output.
	AdminTokenFile string `json:"admin_token_file"`
	// InsecureListen allows a listener beyond loopback without TLS: API
	// tokens and device credentials would then cross the network in clear.
	InsecureListen bool `json:"insecure_listen"`
	// MetricsAuth puts GET /metrics behind a reader token (default:
	// public, like /healthz, for scrapers on a trusted network).
	MetricsAuth bool `json:"metrics_auth"`
	// AuthFailLimit is how many requests with an invalid API token one
	// source address may send per minute before it gets 429 until the
	// minute ends (0: the default, 10; negative: no limit).
	AuthFailLimit int `json:"auth_fail_limit"`
	// DisableCryptoHelpers turns off the API's protect/unprotect helpers
	// (POST /api/v1/topics/{topic}/protect and /unprotect answer 403): an
	// operator token then cannot use the C2 to encrypt or decrypt with a
	// topic key at all.
	DisableCryptoHelpers bool `json:"disable_crypto_helpers"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `json:"log_level"`
	// AuditMemory bounds the audit entries the server keeps in memory for
	// the API (the newest ones); the log keeps every entry.
	AuditMemory int `json:"audit_memory"`
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout Duration `json:"shutdown_timeout"`
	// APIRate is the steady number of API requests per second allowed per
	// token (0: the default, 1,000; negative: no limit), APIBurst the
	// bucket size (0: twice the rate). Beyond them the API answers 429
	// with Retry-After. The defaults let a fleet script run flat out while
	// a runaway loop of one token cannot starve the others.
	APIRate  float64 `json:"api_rate"`
	APIBurst int     `json:"api_burst"`
	// SnapshotEvery is the key-state snapshot cadence in events (0: the
	// default, c2.DefaultSnapshotEvery). Snapshots live in
	// <data-dir>/snapshots and spare a start the replay of the whole log.
	SnapshotEvery uint64 `json:"snapshot_every"`
	// InstanceID names this instance in the leases of a shared store
	// (JetStream or EventStoreDB); it must differ between the instances
	// sharing one log. Empty: the host name and a random suffix.
	InstanceID string `json:"instance_id"`
	// LeaseDuration is the lease duration T on a shared store (0: 8s):
	// the holder of a duty's lease renews every T/3 and stops at 0.9·T
	// without a renewal; a standby takes the lease over after T without
	// one, so a dead instance's duties move within T + T/4. Ignored with
	// the embedded store (one process: it holds every duty).
	LeaseDuration Duration `json:"lease_duration"`
	// Monitor configures the traffic monitor (off by default; serve
	// --monitor turns it on with the defaults).
	Monitor MonitorConfig `json:"monitor"`
	// Cluster configures the integrated mode (serve --cluster): the
	// instances run an embedded JetStream cluster among themselves and
	// keep the log in it, with no external store.
	Cluster ClusterConfig `json:"cluster"`
	// FromScratch ignores the snapshots at start and replays the whole
	// log (a flag, not a file setting: it is for one start).
	FromScratch bool `json:"-"`
	// ReadOnly serves the API read-only for forensics on a store that may
	// be damaged (a broken chain): no write of any kind, no delivery, no
	// automation, no broker (a flag, not a file setting).
	ReadOnly bool `json:"-"`
}

// ClusterConfig configures the integrated mode: an embedded NATS server
// with JetStream in each instance, joined to the others by cluster routes.
type ClusterConfig struct {
	// Enabled runs the embedded node and keeps the log in its JetStream
	// (the store setting must then be empty).
	Enabled bool `json:"enabled"`
	// Name is the NATS cluster name, the same on every node (default
	// "e4c2").
	Name string `json:"name"`
	// NodeName names this node in the cluster; it must differ between the
	// nodes and stay the same across restarts (default: instance_id, else
	// the host name).
	NodeName string `json:"node_name"`
	// Listen is the route listen address the other nodes connect to
	// (e.g. 0.0.0.0:6222). Beyond loopback it needs the route TLS
	// (TLSCertFile, TLSKeyFile, TLSCAFile) or insecure_listen.
	Listen string `json:"listen"`
	// ClientListen is the local NATS client listener the C2 (and an
	// operator's nats CLI) connects to (default 127.0.0.1:4222).
	ClientListen string `json:"client_listen"`
	// Peers are the route URLs of the other nodes (nats://host:6222).
	Peers []string `json:"peers"`
	// Replicas is the replication factor of the log's streams (0: 3, or
	// the number of nodes when fewer than 3 are configured).
	Replicas int `json:"replicas"`
	// TLSCertFile and TLSKeyFile are this node's route certificate and
	// key, TLSCAFile the CA bundle every node's route certificate must
	// chain to: together they make the routes mutual TLS (each side
	// verifies the other's certificate), all three or none.
	TLSCertFile string `json:"tls_cert_file"`
	TLSKeyFile  string `json:"tls_key_file"`
	TLSCAFile   string `json:"tls_ca_file"`
	// SecretFile holds a secret shared by the nodes (owner-only file):
	// a route is accepted only from a node that proves it. A second
	// lock besides TLS, or the only one where TLS is terminated
	// elsewhere (it crosses the route in clear without route TLS).
	SecretFile string `json:"secret_file"`
}

// RouteTLS reports whether the routes are configured for mutual TLS.
func (cc *ClusterConfig) RouteTLS() bool {
	return cc.TLSCertFile != "" && cc.TLSKeyFile != "" && cc.TLSCAFile != ""
}

// DefaultClusterClientListen is the default of ClusterConfig.ClientListen.
const DefaultClusterClientListen = "127.0.0.1:4222"

// EffectiveReplicas is the replication factor the integrated mode uses.
func (cc *ClusterConfig) EffectiveReplicas() int {
	if cc.Replicas != 0 {
		return cc.Replicas
	}
	return min(3, len(cc.Peers)+1)
}

func (c *Config) validateCluster() error {
	cc := &c.Cluster
	if !cc.Enabled {
		return nil
	}
	if c.Store != "" {
		return fmt.Errorf("cluster mode keeps the log in the embedded JetStream cluster: leave --store empty (it is %q)", RedactStoreURL(c.Store))
	}
	if cc.Listen == "" {
		return errors.New("cluster mode: give the route listen address (--cluster-listen, e.g. 0.0.0.0:6222)")
	}
	if err := cc.validateRouteTLS(); err != nil {
		return err
	}
	if err := c.validateClusterListen(); err != nil {
		return err
	}
	for _, p := range cc.Peers {
		u, err := url.Parse(p)
		if err != nil || u.Scheme != "nats" || u.Host == "" {
			return fmt.Errorf("cluster peer %q: want nats://host:port (the route address of another node)", RedactStoreURL(p))
		}
		// A password in a flag is readable by every local user in ps
		// and lands in shell histories: the secret comes from a file.
		if u.User != nil {
			return fmt.Errorf("cluster peer %q: no credentials in peer URLs; give the shared secret in --cluster-secret-file", RedactStoreURL(p))
		}
	}
	if cc.Replicas < 0 || cc.Replicas > 5 || cc.Replicas > len(cc.Peers)+1 {
		return fmt.Errorf("cluster replicas %d: want 1 to 5 and at most the number of nodes (%d); 0: 3", cc.Replicas, len(cc.Peers)+1)
	}
	return nil
}

// validateRouteTLS refuses a partial route TLS configuration: a
// certificate without its key, or either without the CA that verifies
// the peers, would leave the routes weaker than the operator meant.
func (cc *ClusterConfig) validateRouteTLS() error {
	set := 0
	for _, f := range []string{cc.TLSCertFile, cc.TLSKeyFile, cc.TLSCAFile} {
		if f != "" {
			set++
		}
	}
	if set != 0 && set != 3 {
		return errors.New("cluster tls: give all three of --cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca (mutual TLS: each node verifies the others against the CA)")
	}
	return nil
}

// validateClusterListen refuses listeners beyond loopback that would
// carry the log in clear. The route listener may leave loopback with
// route TLS; the client listener never has TLS or authentication.
func (c *Config) validateClusterListen() error {
	cc := &c.Cluster
	for _, l := range []struct {
		name, addr string
		tls        bool
	}{{"cluster listen", cc.Listen, cc.RouteTLS()}, {"cluster client listen", cc.ClientListen, false}} {
		if l.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			return fmt.Errorf("%s address %q: %w", l.name, l.addr, err)
		}
		if c.InsecureListen || l.tls || tlsfiles.IsLoopback(l.addr) {
			continue
		}
		if l.name == "cluster listen" {
			return fmt.Errorf("%s %s: %w: the routes would carry the log in clear; give --cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca (e4c2 cluster-certs makes a set), or --insecure-listen on a private network", l.name, l.addr, tlsfiles.ErrInsecureListen)
		}
		return fmt.Errorf("%s %s: %w: the NATS client port has no TLS nor authentication; keep it on loopback, or give --insecure-listen on a private network", l.name, l.addr, tlsfiles.ErrInsecureListen)
	}
	return nil
}

// MonitorConfig configures the traffic monitor (package monitor). Zero
// values take the monitor's defaults.
type MonitorConfig struct {
	// Enabled subscribes the monitor to the managed topics: the embedded
	// broker's publishes, or a shared subscription on an external broker.
	Enabled bool `json:"enabled"`
	// QueueSize bounds the messages waiting for classification (default
	// 4096); past it the monitor samples (drops are counted).
	QueueSize int `json:"queue_size"`
	// Workers classify in parallel (default 1).
	Workers int `json:"workers"`
	// Window is the aggregation window of findings (default 1m).
	Window Duration `json:"window"`
	// RateBucket is the bucket of the rate baseline (default 10s).
	RateBucket Duration `json:"rate_bucket"`
	// ReplayCapacity bounds the digests remembered per topic for replay
	// detection (default 65536; negative: off).
	ReplayCapacity int `json:"replay_capacity"`
	// SharedGroup is the shared-subscription group on an external broker
	// (default "e4c2-monitor": instances in one group split the traffic).
	SharedGroup string `json:"shared_group"`
}

// Duration is a time.Duration that reads "30s" in JSON.
type Duration struct{ time.Duration }

// UnmarshalJSON accepts a Go duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		d.Duration = v
		return nil
	}
	var n float64
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("duration: want a string like \"30s\" or a number of seconds")
	}
	d.Duration = time.Duration(n * float64(time.Second))
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// Default returns the configuration of a fresh machine: everything embedded,
// on loopback, in ./e4c2-data.
func Default() Config {
	return Config{
		DataDir:         "e4c2-data",
		Suite:           "standard",
		Mode:            "sk",
		MQTTListen:      "127.0.0.1:1883",
		HTTPListen:      "127.0.0.1:8080",
		LogLevel:        "info",
		AuditMemory:     100_000,
		ShutdownTimeout: Duration{30 * time.Second},
	}
}

// LoadFile overlays the JSON file at path on c. Unknown fields are refused
// so a typo does not silently keep a default.
func (c *Config) LoadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// EnvPrefix prefixes every environment variable of the configuration.
const EnvPrefix = "E4C2_"

// envNames maps environment variables to fields.
func (c *Config) envFields() map[string]*string {
	return map[string]*string{
		"DATA_DIR":               &c.DataDir,
		"SUITE":                  &c.Suite,
		"MODE":                   &c.Mode,
		"STORE":                  &c.Store,
		"MASTER_KEY_FILE":        &c.MasterKeyFile,
		"MASTER_KEY_ENV":         &c.MasterKeyEnv,
		"MASTER_PASSPHRASE_FILE": &c.MasterPassphraseFile,
		"BROKER":                 &c.Broker,
		"BROKER_USERNAME":        &c.BrokerUsername,
		"BROKER_PASSWORD_FILE":   &c.BrokerPasswordFile,
		"BROKER_CA_FILE":         &c.BrokerCAFile,
		"MQTT_LISTEN":            &c.MQTTListen,
		"HTTP_LISTEN":            &c.HTTPListen,
		"TLS_CERT_FILE":          &c.TLSCertFile,
		"TLS_KEY_FILE":           &c.TLSKeyFile,
		"MQTT_TLS_CERT_FILE":     &c.MQTTTLSCertFile,
		"MQTT_TLS_KEY_FILE":      &c.MQTTTLSKeyFile,
		"MQTT_CLIENT_CA_FILE":    &c.MQTTClientCAFile,
		"LOG_LEVEL":              &c.LogLevel,
	}
}

// LoadEnv overlays E4C2_* environment variables on c (lookup is os.LookupEnv
// in production, a map in tests).
func (c *Config) LoadEnv(lookup func(string) (string, bool)) error {
	for name, field := range c.envFields() {
		if v, ok := lookup(EnvPrefix + name); ok {
			*field = v
		}
	}
	if v, ok := lookup(EnvPrefix + "DELIVERY_WINDOW"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%sDELIVERY_WINDOW: %w", EnvPrefix, err)
		}
		c.DeliveryWindow = n
	}
	if v, ok := lookup(EnvPrefix + "SHUTDOWN_TIMEOUT"); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%sSHUTDOWN_TIMEOUT: %w", EnvPrefix, err)
		}
		c.ShutdownTimeout.Duration = d
	}
	return nil
}

// StoreKind tells which store backend the configuration selects.
type StoreKind int

const (
	// StoreEmbedded is the bbolt file.
	StoreEmbedded StoreKind = iota
	// StoreESDB is an EventStoreDB / KurrentDB server.
	StoreESDB
	// StoreJetStream is a NATS JetStream server or cluster.
	StoreJetStream
)

// StoreKind returns the backend kind and, for the embedded store, its path.
func (c *Config) StoreKind() (StoreKind, string) {
	s := c.Store
	if strings.HasPrefix(s, "esdb://") || strings.HasPrefix(s, "esdb+discover://") ||
		strings.HasPrefix(s, "kurrentdb://") || strings.HasPrefix(s, "kurrent://") {
		return StoreESDB, s
	}
	if c.Cluster.Enabled || strings.HasPrefix(s, "nats://") || strings.HasPrefix(s, "tls://") {
		return StoreJetStream, s
	}
	if s == "" {
		return StoreEmbedded, filepath.Join(c.DataDir, "e4c2.db")
	}
	return StoreEmbedded, s
}

// SharedStore reports whether the store can be shared by several
// instances (JetStream, EventStoreDB): the duties are then held through
// leases in the log.
func (c *Config) SharedStore() bool {
	kind, _ := c.StoreKind()
	return kind != StoreEmbedded
}

// MasterKeyPath returns the master key file path.
func (c *Config) MasterKeyPath() string {
	if c.MasterKeyFile != "" {
		return c.MasterKeyFile
	}
	return filepath.Join(c.DataDir, "master.key")
}

// Validate refuses invalid values and combinations. Its error is one line
// that says what to change.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("data directory is empty (set --data-dir)")
	}
	mode, err := suites.ParseMode(c.Mode)
	if err != nil {
		return err
	}
	if _, err := suites.ForMode(c.Suite, mode); err != nil {
		return err
	}
	if c.Broker != "" {
		u, err := url.Parse(c.Broker)
		if err != nil {
			return fmt.Errorf("broker url: %w", err)
		}
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts":
		default:
			return fmt.Errorf("broker url %q: scheme must be tcp, mqtt, ssl, tls or mqtts", c.Broker)
		}
		if u.Host == "" {
			return fmt.Errorf("broker url %q has no host", c.Broker)
		}
		if c.BrokerCAFile != "" && (u.Scheme == "tcp" || u.Scheme == "mqtt") {
			return fmt.Errorf("broker CA file given for a plain-text broker url %q (use ssl://)", c.Broker)
		}
	} else if c.BrokerUsername != "" || c.BrokerPasswordFile != "" || c.BrokerCAFile != "" {
		return errors.New("broker credentials or CA given without an external --broker url")
	}
	if c.DeliverUnseen && (c.Broker == "" || c.DeviceAcks) {
		return errors.New("deliver_unseen applies to an external broker without device_acks (the embedded broker and acks see devices)")
	}
	if c.BrokerLogSightings && (c.Broker == "" || c.DeviceAcks) {
		return errors.New("broker_log_sightings applies to an external broker without device_acks (the embedded broker and acks see devices)")
	}
	for name, addr := range map[string]string{"http listen": c.HTTPListen, "mqtt listen": c.MQTTListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%s address %q: %w", name, addr, err)
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("tls: give both --tls-cert-file and --tls-key-file")
	}
	if (c.MQTTTLSCertFile == "") != (c.MQTTTLSKeyFile == "") {
		return errors.New("mqtt tls: give both --mqtt-tls-cert-file and --mqtt-tls-key-file")
	}
	if c.MQTTClientCAFile != "" && c.MQTTTLSCertFile == "" {
		return errors.New("mqtt tls: a client CA needs the broker's own certificate (--mqtt-tls-cert-file)")
	}
	if !c.InsecureListen {
		if c.TLSCertFile == "" && !tlsfiles.IsLoopback(c.HTTPListen) {
			return fmt.Errorf("http listen %s: %w: API tokens would cross the network in clear; give --tls-cert-file/--tls-key-file (e4c2 tls init makes a test pair) or --insecure-listen", c.HTTPListen, tlsfiles.ErrInsecureListen)
		}
		if c.Broker == "" && c.MQTTTLSCertFile == "" && !tlsfiles.IsLoopback(c.MQTTListen) {
			return fmt.Errorf("mqtt listen %s: %w: device credentials would cross the network in clear; give --mqtt-tls-cert-file/--mqtt-tls-key-file or --insecure-listen", c.MQTTListen, tlsfiles.ErrInsecureListen)
		}
	}
	if c.APIBurst < 0 {
		return fmt.Errorf("api burst %d: must be positive (0: twice --api-rate)", c.APIBurst)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.AuditMemory < 0 {
		return fmt.Errorf("audit memory %d: must be >= 0 (0: unbounded)", c.AuditMemory)
	}
	if c.DeliveryWindow < 0 {
		return fmt.Errorf("delivery window %d: must be >= 0", c.DeliveryWindow)
	}
	if c.ShutdownTimeout.Duration <= 0 {
		return errors.New("shutdown timeout must be positive")
	}
	if d := c.LeaseDuration.Duration; d != 0 && (d < time.Second || d > 10*time.Minute) {
		return fmt.Errorf("lease duration %v: want between 1s and 10m (0: 8s)", d)
	}
	if err := c.validateCluster(); err != nil {
		return err
	}
	return c.Monitor.validate()
}

func (m *MonitorConfig) validate() error {
	if m.QueueSize < 0 || m.Workers < 0 {
		return errors.New("monitor: queue_size and workers must be >= 0")
	}
	if m.Window.Duration < 0 || m.RateBucket.Duration < 0 {
		return errors.New("monitor: window and rate_bucket must be >= 0")
	}
	if strings.ContainsAny(m.SharedGroup, "/+#") {
		return fmt.Errorf("monitor: shared_group %q: no /, + or #", m.SharedGroup)
	}
	return nil
}
