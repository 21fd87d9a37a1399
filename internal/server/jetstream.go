package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	jsapi "github.com/nats-io/nats.go/jetstream"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/jetstream"
	"github.com/e4c2/e4c2/eventstore/sealing"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/natsnode"
	"github.com/e4c2/e4c2/internal/tlsfiles"
)

// openJetStream opens the log on a NATS JetStream server or cluster named
// by a nats:// or tls:// URL (see jetstream.ParseURL for its parameters).
func openJetStream(ctx context.Context, url string, log *slog.Logger) (eventstore.Store, error) {
	st, err := jetstream.Open(ctx, url, &jetstream.Options{Logger: log.With("component", "jetstream")})
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", config.RedactedError{Err: err})
	}
	return st, nil
}

// startClusterNode starts the embedded NATS node of the integrated mode
// (serve --cluster) and returns it with the store URL of the log on it:
// the node's loopback client URL with the replication factor.
func startClusterNode(ctx context.Context, cfg config.Config, log *slog.Logger) (*natsnode.Node, string, error) {
	cc := cfg.Cluster
	name := cc.NodeName
	if name == "" {
		name = cfg.InstanceID
	}
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, "", fmt.Errorf("cluster node name: %w (set cluster.node_name)", err)
		}
		name = h
	}
	clusterName := cc.Name
	if clusterName == "" {
		clusterName = "e4c2"
	}
	clientListen := cc.ClientListen
	if clientListen == "" {
		clientListen = config.DefaultClusterClientListen
	}
	dir := filepath.Join(cfg.DataDir, "nats")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("cluster: %w", err)
	}
	routeTLS, secret, err := routeSecurity(cc)
	if err != nil {
		return nil, "", err
	}
	defer clear(secret)
	tokenFile := filepath.Join(dir, ClientTokenFile)
	token, err := clusterClientToken(tokenFile)
	if err != nil {
		return nil, "", err
	}
	log.Info("starting the embedded nats node", "node_name", name, "cluster", clusterName,
		"route_listen", cc.Listen, "peers", peerHosts(cc.Peers), "replicas", cc.EffectiveReplicas(),
		"route_tls", routeTLS != nil, "route_secret", secret != nil)
	node, err := natsnode.Start(ctx, natsnode.Options{
		ServerName:   name,
		ClusterName:  clusterName,
		StoreDir:     dir,
		ClientListen: clientListen,
		RouteListen:  cc.Listen,
		Peers:        cc.Peers,
		Logger:       log,
		RouteTLS:     routeTLS,
		RouteSecret:  secret,
		ClientToken:  token,
	})
	if err != nil {
		return nil, "", fmt.Errorf("cluster: %w", err)
	}
	q := url.Values{"replicas": {strconv.Itoa(cc.EffectiveReplicas())}, "token_file": {tokenFile}}
	return node, node.ClientURL() + "?" + q.Encode(), nil
}

// ClientTokenFile is the file, in <data_dir>/nats, holding the token that
// the integrated node's client port requires: the instance's own
// connection and local tools (e4c2 export --store
// 'nats://127.0.0.1:4222?token_file=...') read it there.
const ClientTokenFile = "client.token"

// clusterClientToken returns the client port's token from path, made
// (32 random bytes, hex, mode 0600) on the first start. Without it any
// local user could append to the log through the loopback port; a file
// that group or others may read is refused for the same reason.
func clusterClientToken(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		b := make([]byte, 32)
		_, werr := rand.Read(b)
		if werr == nil {
			_, werr = f.WriteString(hex.EncodeToString(b) + "\n")
		}
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			_ = os.Remove(path) // a partial token would refuse every later start
			return "", fmt.Errorf("cluster client token: %w", werr)
		}
	case !errors.Is(err, os.ErrExist):
		return "", fmt.Errorf("cluster client token: %w", err)
	}
	if err := ownerOnly(path, "cluster client token file"); err != nil {
		return "", err
	}
	tok, err := jetstream.ReadTokenFile(path)
	if err != nil {
		return "", fmt.Errorf("cluster client token: %w", err)
	}
	return tok, nil
}

// routeSecurity loads what protects the cluster routes: the mutual TLS
// configuration from the route certificate, key and CA files, and the
// shared secret (nil for what is not configured).
func routeSecurity(cc config.ClusterConfig) (*tls.Config, []byte, error) {
	var tc *tls.Config
	if cc.RouteTLS() {
		var err error
		if tc, err = tlsfiles.RouteConfig(cc.TLSCertFile, cc.TLSKeyFile, cc.TLSCAFile); err != nil {
			return nil, nil, err
		}
	}
	if cc.SecretFile == "" {
		return tc, nil, nil
	}
	secret, err := readClusterSecret(cc.SecretFile)
	if err != nil {
		return nil, nil, err
	}
	return tc, secret, nil
}

// MinClusterSecret is the shortest route secret accepted, in bytes: the
// secret is the only thing that keeps a node without route TLS out.
const MinClusterSecret = 16

// ErrInsecureSecretFile: a cluster secret file (the route secret, the
// client port's token) that group or others may read or write.
var ErrInsecureSecretFile = errors.New("cluster secret file readable or writable by others")

// ownerOnly checks that path (a secret file, named what in errors) is a
// regular file that group and others can neither read nor write.
func ownerOnly(path, what string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s %s is not a regular file", what, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %04o, want 0600 or 0400 (chmod 600 %s)", ErrInsecureSecretFile, path, perm, path)
	}
	return nil
}

// readClusterSecret reads the route secret from path, refused (like ssh
// refuses a private key) when group or others may access the file: any
// local user who reads it could join the cluster. Surrounding white space
// (the newline of an echo) is not part of the secret. Errors name the
// file, never its contents.
func readClusterSecret(path string) ([]byte, error) {
	if err := ownerOnly(path, "cluster secret file"); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster secret file: %w", err)
	}
	secret := bytes.TrimSpace(b)
	if len(secret) < MinClusterSecret {
		clear(b)
		return nil, fmt.Errorf("cluster secret file %s: %d bytes, want at least %d (e.g. head -c 32 /dev/urandom | base64 > %s)", path, len(secret), MinClusterSecret, path)
	}
	return secret, nil
}

// startCluster, in the integrated mode (serve --cluster), starts the
// embedded NATS node and returns the store URL of the log on it; otherwise
// it returns cfg.Store.
func (s *Server) startCluster(ctx context.Context, cfg config.Config) (string, error) {
	if !cfg.Cluster.Enabled || cfg.ReadOnly {
		return cfg.Store, nil
	}
	node, storeURL, err := startClusterNode(ctx, cfg, s.log)
	if err != nil {
		return "", err
	}
	s.natsNode = node
	return storeURL, nil
}

// openSharedKeyring is openKeyring after, in the integrated mode, the
// wait for the bootstrapper's keyring on a new log (waitClusterKeyring).
func (s *Server) openSharedKeyring(ctx context.Context, cfg config.Config) (*sealing.Keyring, error) {
	if err := s.waitClusterKeyring(ctx); err != nil {
		return nil, err
	}
	return openKeyring(ctx, cfg, s.store, s.log)
}

// clusterBootstrapper reports whether this instance may create what a
// fresh log needs once (the keyring, the first admin token): in the
// integrated mode only the node leading the JetStream meta group does, so
// that three instances started together on empty data do not race.
func (s *Server) clusterBootstrapper() bool {
	return s.natsNode == nil || s.natsNode.MetaLeader() == s.natsNode.Name()
}

// waitClusterKeyring, in the integrated mode on a node that is not the
// bootstrapper, waits until the bootstrapper saved the log's keyring.
func (s *Server) waitClusterKeyring(ctx context.Context) error {
	storage, ok := s.store.(eventstore.KeyringStorage)
	if !ok || s.natsNode == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, natsnode.DefaultReadyTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for logged := false; ; {
		if s.clusterBootstrapper() {
			return nil
		}
		_, err := storage.LoadKeyring(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, eventstore.ErrNoKeyring) {
			return fmt.Errorf("cluster: load keyring: %w", err)
		}
		if !logged {
			s.log.Info("new log: waiting for the JetStream meta leader's instance to create the keyring", "meta_leader", s.natsNode.MetaLeader())
			logged = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: no keyring from the meta leader's instance: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// waitClusterToken, in the integrated mode on a node that is not the
// bootstrapper and a log without tokens, waits until this instance's
// projections see the first admin token the bootstrapper creates, so
// that every instance accepts it once started. It returns true when the
// token was seen, false when this instance must create it.
func (s *Server) waitClusterToken(ctx context.Context) (bool, error) {
	if s.natsNode == nil {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, natsnode.DefaultReadyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for logged := false; ; {
		if len(s.svc.Tokens()) > 0 {
			return true, nil
		}
		if s.clusterBootstrapper() {
			return false, nil
		}
		if !logged {
			s.log.Info("no admin token yet: waiting for the one the JetStream meta leader's instance creates", "meta_leader", s.natsNode.MetaLeader())
			logged = true
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("cluster: no first admin token from the meta leader's instance: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// errCodeNoPeers is JetStream's "no suitable peers for placement": the
// meta leader does not know enough nodes with JetStream yet for the
// replication factor.
const errCodeNoPeers = 10005

// openClusterJetStream opens the log on the local node of the integrated
// mode. Right after the meta group formed, its leader may not know every
// node yet and refuse to place a replicated stream: that is retried until
// the ready timeout.
func openClusterJetStream(ctx context.Context, storeURL string, log *slog.Logger) (eventstore.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, natsnode.DefaultReadyTimeout)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := jetstream.Open(ctx, storeURL, &jetstream.Options{Logger: log.With("component", "jetstream")})
		var apiErr *jsapi.APIError
		if err == nil || !errors.As(err, &apiErr) || apiErr.ErrorCode != errCodeNoPeers {
			if err != nil {
				return nil, fmt.Errorf("cluster: %w", err)
			}
			return st, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster: %w (are all the peers up? the replication factor needs as many nodes)", err)
		case <-tick.C:
		}
	}
}

// peerHosts returns the host:port of each peer URL, for the log (a URL
// could carry route credentials).
func peerHosts(peers []string) []string {
	var out []string
	for _, p := range peers {
		if u, err := url.Parse(p); err == nil {
			out = append(out, u.Host)
		}
	}
	return out
}
