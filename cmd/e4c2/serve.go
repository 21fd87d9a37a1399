package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/server"
)

func newServeCmd() *cobra.Command {
	cfg := config.Default()
	var configFile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the C2: embedded store and MQTT broker, delivery worker and HTTP API",
		Long: `Run the C2 server. With no flag it works on a fresh machine: it creates
./e4c2-data with the embedded store and a master key file (0600), prints a
first admin API token once, starts the embedded MQTT broker on 127.0.0.1:1883
and serves the HTTP API on 127.0.0.1:8080.

Precedence: defaults < --config file < E4C2_* environment variables < flags.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			final := config.Default()
			if configFile != "" {
				if err := final.LoadFile(configFile); err != nil {
					return err
				}
			}
			if err := final.LoadEnv(os.LookupEnv); err != nil {
				return err
			}
			// Flags the user set win over file and environment.
			cmd.Flags().Visit(func(f *pflag.Flag) { applyFlag(&final, &cfg, f.Name) })
			if err := final.Validate(); err != nil {
				return withHint(err, "see e4c2 serve --help")
			}
			return serve(cmd.Context(), cmd, final)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "JSON configuration file")
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data directory (embedded store, master key, checkpoints)")
	f.StringVar(&cfg.Suite, "suite", cfg.Suite, "crypto suite: standard, fips or pq")
	f.StringVar(&cfg.Mode, "mode", cfg.Mode, "key mode: sk or pk")
	f.StringVar(&cfg.Store, "store", cfg.Store, "store: empty for the embedded file, a .db path, an esdb:// URL or a nats:// (JetStream) URL")
	f.StringVar(&cfg.MasterKeyFile, "master-key-file", cfg.MasterKeyFile, "master key file (default <data-dir>/master.key)")
	f.StringVar(&cfg.MasterKeyEnv, "master-key-env", cfg.MasterKeyEnv, "name of an environment variable holding the master key")
	f.StringVar(&cfg.MasterPassphraseFile, "master-passphrase-file", cfg.MasterPassphraseFile, "file holding a passphrase to derive the master key from")
	f.StringVar(&cfg.Broker, "broker", cfg.Broker, "external MQTT broker URL (tcp:// or ssl://); empty runs the embedded broker")
	f.StringVar(&cfg.BrokerUsername, "broker-username", cfg.BrokerUsername, "external broker username")
	f.StringVar(&cfg.BrokerPasswordFile, "broker-password-file", cfg.BrokerPasswordFile, "file holding the external broker password")
	f.StringVar(&cfg.BrokerCAFile, "broker-ca-file", cfg.BrokerCAFile, "PEM CA bundle for the external broker's TLS certificate")
	f.StringVar(&cfg.MQTTListen, "mqtt-listen", cfg.MQTTListen, "embedded broker listen address")
	f.BoolVar(&cfg.Monitor.Enabled, "monitor", cfg.Monitor.Enabled, "watch the traffic of the managed topics and record findings (forged, old key, plaintext, replay...)")
	f.BoolVar(&cfg.DeviceAcks, "device-acks", cfg.DeviceAcks, "external broker: confirm commands with the acknowledgements of devices that send them (client/ack)")
	f.BoolVar(&cfg.BrokerLogSightings, "broker-log-sightings", cfg.BrokerLogSightings, "external mosquitto without device acks: a device subscribing to its control topic (mosquitto's subscription log, see broker-config --sightings) counts as seen")
	f.BoolVar(&cfg.DeliverUnseen, "deliver-unseen", cfg.DeliverUnseen, "external broker without device acks: send commands to devices never seen instead of holding them until released")
	f.StringSliceVar(&cfg.MQTTAnonymousRead, "mqtt-anonymous-read", cfg.MQTTAnonymousRead, "topics that clients without a device credential may read from the embedded broker (comma-separated; default none)")
	f.IntVar(&cfg.DeliveryWindow, "delivery-window", cfg.DeliveryWindow, "unconfirmed publishes in flight (0: broker default)")
	f.StringVar(&cfg.HTTPListen, "http-listen", cfg.HTTPListen, "HTTP API listen address")
	f.StringVar(&cfg.TLSCertFile, "tls-cert-file", cfg.TLSCertFile, "PEM certificate of the HTTP API (TLS; reloaded on change or SIGHUP)")
	f.StringVar(&cfg.TLSKeyFile, "tls-key-file", cfg.TLSKeyFile, "PEM private key of the HTTP API")
	f.StringVar(&cfg.MQTTTLSCertFile, "mqtt-tls-cert-file", cfg.MQTTTLSCertFile, "PEM certificate of the embedded broker (TLS only)")
	f.StringVar(&cfg.MQTTTLSKeyFile, "mqtt-tls-key-file", cfg.MQTTTLSKeyFile, "PEM private key of the embedded broker")
	f.StringVar(&cfg.MQTTClientCAFile, "mqtt-client-ca-file", cfg.MQTTClientCAFile, "require device TLS certificates signed by these CAs (mutual TLS)")
	f.StringVar(&cfg.AdminTokenFile, "admin-token-file", cfg.AdminTokenFile, "write the first admin token to this new 0600 file instead of standard output")
	f.BoolVar(&cfg.InsecureListen, "insecure-listen", cfg.InsecureListen, "allow listening beyond loopback without TLS (tokens and credentials in clear)")
	f.BoolVar(&cfg.MetricsAuth, "metrics-auth", cfg.MetricsAuth, "require a reader token for GET /metrics")
	f.IntVar(&cfg.AuthFailLimit, "auth-fail-limit", cfg.AuthFailLimit, "invalid API tokens allowed per source address and minute before 429 (0: default 10, negative: no limit)")
	f.BoolVar(&cfg.DisableCryptoHelpers, "disable-crypto-helpers", cfg.DisableCryptoHelpers, "turn off the API's protect/unprotect helpers (403 crypto_helpers_disabled)")
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log level: debug, info, warn, error")
	f.DurationVar(&cfg.ShutdownTimeout.Duration, "shutdown-timeout", cfg.ShutdownTimeout.Duration, "graceful shutdown bound")
	f.Float64Var(&cfg.APIRate, "api-rate", cfg.APIRate, "API requests per second per token; beyond it 429 with Retry-After (0: 1000; negative: no limit)")
	f.IntVar(&cfg.APIBurst, "api-burst", cfg.APIBurst, "API request burst per token (0: twice --api-rate)")
	f.Uint64Var(&cfg.SnapshotEvery, "snapshot-every", cfg.SnapshotEvery, "write a key-state snapshot every N events (0: 100000); also at a graceful stop")
	f.StringVar(&cfg.InstanceID, "instance-id", cfg.InstanceID, "name of this instance in the leases of a shared store (unique per instance; default: host name and a random suffix)")
	f.DurationVar(&cfg.LeaseDuration.Duration, "lease-duration", cfg.LeaseDuration.Duration, "lease duration on a shared store: a dead instance's duties move within 1.25x this (0: 8s)")
	f.BoolVar(&cfg.Cluster.Enabled, "cluster", cfg.Cluster.Enabled, "integrated mode: run an embedded JetStream node joined to --cluster-peers and keep the log in it (no --store)")
	f.StringVar(&cfg.Cluster.Listen, "cluster-listen", cfg.Cluster.Listen, "cluster mode: route listen address the other nodes connect to (e.g. 0.0.0.0:6222; beyond loopback needs --cluster-tls-* or --insecure-listen)")
	f.StringVar(&cfg.Cluster.ClientListen, "cluster-client-listen", cfg.Cluster.ClientListen, "cluster mode: local NATS client listen address (default 127.0.0.1:4222)")
	f.StringSliceVar(&cfg.Cluster.Peers, "cluster-peers", cfg.Cluster.Peers, "cluster mode: route URLs of the other nodes (nats://host:6222, comma-separated)")
	f.StringVar(&cfg.Cluster.Name, "cluster-name", cfg.Cluster.Name, "cluster mode: NATS cluster name, the same on every node (default e4c2)")
	f.StringVar(&cfg.Cluster.NodeName, "cluster-node-name", cfg.Cluster.NodeName, "cluster mode: this node's name, unique and stable across restarts (default --instance-id, else the host name)")
	f.StringVar(&cfg.Cluster.TLSCertFile, "cluster-tls-cert", cfg.Cluster.TLSCertFile, "cluster mode: PEM certificate of this node's routes (mutual TLS; for server and client use; e4c2 cluster-certs makes a set)")
	f.StringVar(&cfg.Cluster.TLSKeyFile, "cluster-tls-key", cfg.Cluster.TLSKeyFile, "cluster mode: PEM private key of --cluster-tls-cert")
	f.StringVar(&cfg.Cluster.TLSCAFile, "cluster-tls-ca", cfg.Cluster.TLSCAFile, "cluster mode: PEM CA bundle every node's route certificate must chain to")
	f.StringVar(&cfg.Cluster.SecretFile, "cluster-secret-file", cfg.Cluster.SecretFile, "cluster mode: file (mode 0600) holding a secret shared by the nodes: routes from nodes without it are refused")
	f.IntVar(&cfg.Cluster.Replicas, "cluster-replicas", cfg.Cluster.Replicas, "cluster mode: replication factor of the log (0: 3, or the number of nodes if fewer)")
	f.BoolVar(&cfg.FromScratch, "from-scratch", cfg.FromScratch, "ignore the key-state snapshots and replay the whole log at start")
	f.BoolVar(&cfg.ReadOnly, "read-only", cfg.ReadOnly, "forensics: serve the API read-only on a store that may be damaged (no write, no delivery, no automation, no broker)")
	return cmd
}

// applyFlag copies the flag named name from the flag-bound config to dst.
func applyFlag(dst, flags *config.Config, name string) {
	switch name {
	case "data-dir":
		dst.DataDir = flags.DataDir
	case "suite":
		dst.Suite = flags.Suite
	case "mode":
		dst.Mode = flags.Mode
	case "store":
		dst.Store = flags.Store
	case "master-key-file":
		dst.MasterKeyFile = flags.MasterKeyFile
	case "master-key-env":
		dst.MasterKeyEnv = flags.MasterKeyEnv
	case "master-passphrase-file":
		dst.MasterPassphraseFile = flags.MasterPassphraseFile
	case "broker":
		dst.Broker = flags.Broker
	case "broker-username":
		dst.BrokerUsername = flags.BrokerUsername
	case "broker-password-file":
		dst.BrokerPasswordFile = flags.BrokerPasswordFile
	case "broker-ca-file":
		dst.BrokerCAFile = flags.BrokerCAFile
	case "mqtt-listen":
		dst.MQTTListen = flags.MQTTListen
	case "device-acks":
		dst.DeviceAcks = flags.DeviceAcks
	case "deliver-unseen":
		dst.DeliverUnseen = flags.DeliverUnseen
	case "broker-log-sightings":
		dst.BrokerLogSightings = flags.BrokerLogSightings
	case "monitor":
		dst.Monitor.Enabled = flags.Monitor.Enabled
	case "mqtt-anonymous-read":
		dst.MQTTAnonymousRead = flags.MQTTAnonymousRead
	case "delivery-window":
		dst.DeliveryWindow = flags.DeliveryWindow
	case "http-listen":
		dst.HTTPListen = flags.HTTPListen
	case "tls-cert-file":
		dst.TLSCertFile = flags.TLSCertFile
	case "tls-key-file":
		dst.TLSKeyFile = flags.TLSKeyFile
	case "mqtt-tls-cert-file":
		dst.MQTTTLSCertFile = flags.MQTTTLSCertFile
	case "mqtt-tls-key-file":
		dst.MQTTTLSKeyFile = flags.MQTTTLSKeyFile
	case "mqtt-client-ca-file":
		dst.MQTTClientCAFile = flags.MQTTClientCAFile
	case "admin-token-file":
		dst.AdminTokenFile = flags.AdminTokenFile
	case "insecure-listen":
		dst.InsecureListen = flags.InsecureListen
	case "metrics-auth":
		dst.MetricsAuth = flags.MetricsAuth
	case "auth-fail-limit":
		dst.AuthFailLimit = flags.AuthFailLimit
	case "disable-crypto-helpers":
		dst.DisableCryptoHelpers = flags.DisableCryptoHelpers
	case "log-level":
		dst.LogLevel = flags.LogLevel
	case "shutdown-timeout":
		dst.ShutdownTimeout = flags.ShutdownTimeout
	case "api-rate":
		dst.APIRate = flags.APIRate
	case "api-burst":
		dst.APIBurst = flags.APIBurst
	case "snapshot-every":
		dst.SnapshotEvery = flags.SnapshotEvery
	case "instance-id":
		dst.InstanceID = flags.InstanceID
	case "lease-duration":
		dst.LeaseDuration = flags.LeaseDuration
	case "cluster", "cluster-listen", "cluster-client-listen", "cluster-peers", "cluster-name", "cluster-node-name", "cluster-replicas",
		"cluster-tls-cert", "cluster-tls-key", "cluster-tls-ca", "cluster-secret-file":
		applyClusterFlag(&dst.Cluster, &flags.Cluster, name)
	case "from-scratch":
		dst.FromScratch = flags.FromScratch
	case "read-only":
		dst.ReadOnly = flags.ReadOnly
	}
}

// applyClusterFlag copies the cluster flag named name from src to dst.
func applyClusterFlag(dst, src *config.ClusterConfig, name string) {
	switch name {
	case "cluster":
		dst.Enabled = src.Enabled
	case "cluster-listen":
		dst.Listen = src.Listen
	case "cluster-client-listen":
		dst.ClientListen = src.ClientListen
	case "cluster-peers":
		dst.Peers = src.Peers
	case "cluster-name":
		dst.Name = src.Name
	case "cluster-node-name":
		dst.NodeName = src.NodeName
	case "cluster-replicas":
		dst.Replicas = src.Replicas
	case "cluster-tls-cert":
		dst.TLSCertFile = src.TLSCertFile
	case "cluster-tls-key":
		dst.TLSKeyFile = src.TLSKeyFile
	case "cluster-tls-ca":
		dst.TLSCAFile = src.TLSCAFile
	case "cluster-secret-file":
		dst.SecretFile = src.SecretFile
	}
}

func serve(ctx context.Context, cmd *cobra.Command, cfg config.Config) error {
	srv, err := server.Start(ctx, cfg, server.Options{Out: cmd.OutOrStdout()})
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// SIGINT or SIGTERM while starting (e.g. an integrated-mode
		// instance still waiting for its peers): a requested stop, not a
		// failure; Start closed what it had opened.
		fmt.Fprintln(cmd.ErrOrStderr(), "e4c2: stopped while starting")
		return nil
	}
	if err != nil {
		// A damaged file, a broken chain or a full disk: one line and
		// what to do.
		return storeError(storeLocation(cfg), err)
	}
	scheme := "http"
	if cfg.TLSCertFile != "" {
		scheme = "https"
	}
	if cfg.ReadOnly {
		fmt.Fprintf(cmd.ErrOrStderr(), "e4c2: serving the API READ-ONLY on %s://%s (forensics: no broker, no delivery, no change; Ctrl-C stops)\n", scheme, srv.HTTPAddr())
	} else {
		fmt.Fprintf(cmd.ErrOrStderr(), "e4c2: serving the API on %s://%s and MQTT on %s (Ctrl-C stops)\n", scheme, srv.HTTPAddr(), srv.MQTTAddr())
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-hup:
			// Renewed certificates: reload them now (they are also
			// picked up on their own when the files change).
			if err := srv.ReloadTLS(); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "e4c2: warning: tls reload: %v\n", err)
			}
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.Duration)
	defer cancel()
	return srv.Shutdown(sctx)
}
