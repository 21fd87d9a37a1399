package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/e4c2/e4c2/internal/tlsfiles"
	"io"
	"io/fs"
	"log/slog"
	"net"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/e4c2/e4c2/automation"
	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/boltstore"
	"github.com/e4c2/e4c2/eventstore/sealing"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/natsnode"
	"github.com/e4c2/e4c2/monitor"
	"github.com/e4c2/e4c2/suites"
	"github.com/e4c2/e4c2/transport/mqtt"
	"github.com/e4c2/e4c2/transport/mqtt/broker"
)

// Server is a running e4c2: store, service, broker, delivery and API.
type Server struct {
	cfg      config.Config
	log      *slog.Logger
	store    eventstore.Store
	keyring  *sealing.Keyring
	svc      *c2.Service
	broker   *broker.Broker // nil with an external broker
	paho     *mqtt.Paho     // nil with the embedded broker
	pub      mqtt.Publisher
	worker   *mqtt.Worker
	metrics  *metrics
	httpSrv  *nethttp.Server
	httpLn   net.Listener
	closeAPI func()

	rules     *automation.Engine // see automation.go
	stopRules context.CancelFunc
	rulesDone chan error
	rulesErr  atomic.Pointer[error] // why the engine is not running (restarting), see automation.go

	workerDone chan error
	closeOnce  sync.Once

	natsNode *natsnode.Node // integrated mode (serve --cluster); nil otherwise

	ha *haState // leases on a shared store; nil on the embedded one (see leases.go)

	presence        *presence // embedded broker only
	wakeOnLog       bool      // external broker: wake the worker on device.released / device.seen
	monitor         *monitor.Monitor
	monitorDone     chan struct{}
	shutdownStarted atomic.Bool // closeAll turned keep-alives off (tests)
	tlsReload       []*tlsfiles.Reloader
	stopBg          context.CancelFunc
	clock           func() time.Time
}

// Options are the parts of a start that are not configuration.
type Options struct {
	// Out receives what an operator must see once (the first admin token);
	// default os.Stdout. Never a log: the token must not reach a SIEM.
	Out io.Writer
	// Logger is the JSON logger (default: slog JSON on stderr).
	Logger *slog.Logger
	// Clock is the service's clock (tests).
	Clock func() time.Time
	// WrapStore, if set, wraps the opened store (tests inject faults).
	WrapStore func(eventstore.Store) eventstore.Store
}

// Start opens everything the configuration names and starts serving. The
// caller must Close (or Shutdown) the returned server.
func Start(ctx context.Context, cfg config.Config, opt Options) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opt.Out == nil {
		opt.Out = os.Stdout
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: parseLevel(cfg.LogLevel)}))
	}
	s := &Server{cfg: cfg, log: opt.Logger, metrics: newMetrics(), workerDone: make(chan error, 1), clock: opt.Clock}
	if s.clock == nil {
		s.clock = time.Now
	}
	registerBuildInfo(s.metrics.reg)
	bg, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	s.stopBg = stopBg
	defer func() {
		if err != nil {
			s.closeAll(context.Background())
		}
	}()

	if !cfg.ReadOnly {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
	}
	if err := checkDataDir(cfg.DataDir, s.log); err != nil {
		return nil, err
	}
	mode, _ := suites.ParseMode(cfg.Mode)
	suite, err := suites.ForMode(cfg.Suite, mode)
	if err != nil {
		return nil, err
	}

	if cfg.Store, err = s.startCluster(ctx, cfg); err != nil {
		return nil, err
	}
	s.cfg.Store = cfg.Store
	if s.store, err = openWrapped(ctx, cfg, opt.WrapStore, s.log); err != nil {
		return nil, err
	}
	if cfg.ReadOnly {
		// Forensics: the chain may well be broken; say so, and serve.
		reportIntegrity(ctx, s.store, s.log)
	} else if err := verifyAtStart(ctx, s.store, s.log); err != nil {
		return nil, err
	}
	if err := checkLogSuite(ctx, s.store, cfg); err != nil {
		return nil, err
	}
	if s.keyring, err = s.openSharedKeyring(ctx, cfg); err != nil {
		return nil, err
	}

	s.svc, err = c2.New(c2.Config{
		Store:  timedStore{Store: s.store, m: s.metrics},
		Sealer: s.keyring,
		Suite:  suite,
		Mode:   mode,
		Clock:  opt.Clock,
		// The in-memory audit view keeps the newest entries; the log
		// keeps them all (e4c2 audit --offline reads every one).
		AuditMax:      cfg.AuditMemory,
		Snapshots:     s.snapshotDir(),
		SnapshotEvery: cfg.SnapshotEvery,
		FromScratch:   cfg.FromScratch,
		ReadOnly:      cfg.ReadOnly,
		Logger:        s.log.With("component", "snapshots"),
	})
	if err != nil {
		return nil, fmt.Errorf("c2 service: %w", err)
	}
	s.metrics.watchService(s.svc)
	if s.ha, err = s.newHA(); err != nil {
		return nil, err
	}
	if cfg.ReadOnly {
		if err := s.startReadOnly(); err != nil {
			return nil, err
		}
		return s, nil
	}
	if err := s.startAutomation(ctx); err != nil {
		return nil, err
	}

	if err := s.startBroker(ctx); err != nil {
		return nil, err
	}
	s.startMonitor(bg)
	s.startDelivery(ctx, bg)

	if err := s.startHTTP(); err != nil {
		return nil, err
	}
	// Only now, with both listeners bound: a start that fails on a busy
	// port must not spend the one printing of the first admin token.
	if err := s.bootstrapAdminToken(ctx, opt.Out); err != nil {
		return nil, err
	}
	s.log.Info("e4c2 started",
		"suite", suite.Name(), "mode", mode.String(),
		"http", s.HTTPAddr(), "mqtt", s.MQTTAddr(),
		"store", storeDescription(cfg), "clients", s.svc.CountClients(), "topics", s.svc.CountTopics(),
		"pending", s.svc.PendingCount())
	return s, nil
}

// startDelivery runs the delivery worker and what wakes it. On a shared
// store the worker and the scheduler run while this instance holds their
// leases (leases.go).
func (s *Server) startDelivery(ctx, bg context.Context) {
	// Releases from here on wake the worker; earlier ones its first fetch sees.
	releasedFrom := s.svc.Position() + 1
	if s.ha == nil {
		s.worker = s.newWorker()
		go func() { s.workerDone <- s.worker.Run(context.WithoutCancel(ctx)) }()
		if s.presence != nil {
			s.presence.setWorker(s.worker)
		}
	} else {
		s.startHA(ctx)
	}
	if s.presence != nil {
		go s.presence.run(bg)
	}
	if s.paho != nil {
		go s.resyncOnReconnect(bg)
	}
	if s.wakeOnLog {
		go s.wakeOnRelease(bg, releasedFrom)
	}
}

// currentWorker is the delivery worker running now: the one worker on the
// embedded store, the current term's on a shared store (nil while this
// instance does not hold the delivery lease).
func (s *Server) currentWorker() *mqtt.Worker {
	if s.ha != nil {
		return s.ha.worker.Load()
	}
	return s.worker
}

// newWorker builds a delivery worker over the service's queue.
func (s *Server) newWorker() *mqtt.Worker {
	return mqtt.NewWorker(newDeliverySource(s.svc), s.pub, mqtt.Config{
		Window:  s.cfg.DeliveryWindow,
		Now:     s.clock, // commands are protected with the service's clock
		Metrics: s.metrics,
		Logger:  s.log.With("component", "delivery"),
	})
}

// Service returns the C2 service (tests, embedding).
func (s *Server) Service() *c2.Service { return s.svc }

// HTTPAddr is the API's bound address.
func (s *Server) HTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// MQTTAddr is the embedded broker's bound address, or the external URL.
func (s *Server) MQTTAddr() string {
	if s.broker != nil {
		return s.broker.Addr()
	}
	return s.cfg.Broker
}

// Shutdown stops the server gracefully within ctx: stop accepting API
// requests, let the delivery worker finish its in-flight publishes, save
// checkpoints, close the broker and the store.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() { err = s.closeAll(ctx) })
	return err
}

func (s *Server) closeAll(ctx context.Context) error {
	var errs []error
	if s.httpSrv != nil {
		// No new request on a kept-alive connection may be answered by a
		// closing server with EOF.
		s.httpSrv.SetKeepAlivesEnabled(false)
		s.shutdownStarted.Store(true)
		if err := s.httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
	}
	if s.closeAPI != nil {
		s.closeAPI()
	}
	// Rules stop before the delivery worker drains, so the commands of
	// their last fires are still delivered.
	if err := s.stopAutomation(ctx); err != nil {
		errs = append(errs, err)
	}
	if s.stopBg != nil {
		s.stopBg()
	}
	s.stopMonitor(ctx)
	if err := s.stopHA(ctx); err != nil {
		errs = append(errs, err)
	}
	if s.worker != nil {
		if err := s.worker.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("delivery shutdown: %w", err))
		}
		select {
		case <-s.workerDone:
		case <-ctx.Done():
		}
	}
	if s.svc != nil {
		if err := s.svc.Close(); err != nil {
			errs = append(errs, fmt.Errorf("service close: %w", err))
		}
	}
	if s.paho != nil {
		_ = s.paho.Close()
	}
	if s.broker != nil {
		if err := s.broker.Close(); err != nil {
			errs = append(errs, fmt.Errorf("broker close: %w", err))
		}
	}
	if s.keyring != nil {
		_ = s.keyring.Close()
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store close: %w", err))
		}
	}
	if s.natsNode != nil {
		// After the store: the C2 is done with the log.
		s.natsNode.Shutdown()
	}
	if len(errs) == 0 {
		s.log.Info("e4c2 stopped")
	}
	return errors.Join(errs...)
}

// openWrapped is openStore with the store wrapped by wrap (if not nil).
func openWrapped(ctx context.Context, cfg config.Config, wrap func(eventstore.Store) eventstore.Store, log *slog.Logger) (eventstore.Store, error) {
	st, err := openStore(ctx, cfg, log)
	if err != nil || wrap == nil {
		return st, err
	}
	return wrap(st), nil
}

func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (eventstore.Store, error) {
	kind, path := cfg.StoreKind()
	// A shared log cannot be opened read-only from here: the forensic
	// mode is for a copy of the embedded store's file.
	if cfg.ReadOnly && kind != config.StoreEmbedded {
		return nil, errors.New("--read-only serves the embedded store only")
	}
	switch kind {
	case config.StoreESDB:
		return openESDB(ctx, path)
	case config.StoreJetStream:
		if cfg.Cluster.Enabled {
			return openClusterJetStream(ctx, path, log)
		}
		return openJetStream(ctx, path, log)
	}
	st, err := boltstore.Open(path, &boltstore.Options{ReadOnly: cfg.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("embedded store %s: %w", path, err)
	}
	return st, nil
}

func storeDescription(cfg config.Config) string {
	kind, path := cfg.StoreKind()
	if kind == config.StoreESDB {
		return "eventstoredb"
	}
	if kind == config.StoreJetStream {
		return "jetstream"
	}
	return path
}

// checkLogSuite refuses to serve a log written under another suite or mode:
// its keys and commands would not fit.
func checkLogSuite(ctx context.Context, st eventstore.Store, cfg config.Config) error {
	recs, err := st.ReadAll(ctx, 1, 1)
	if err != nil {
		return fmt.Errorf("read store: %w", err)
	}
	if len(recs) == 0 {
		return nil
	}
	m := recs[0].Meta
	if (m.Suite != "" && m.Suite != cfg.Suite) || (m.Mode != "" && m.Mode != cfg.Mode) {
		return fmt.Errorf("the store was created with --suite %s --mode %s; start with those (or use a new --data-dir)", m.Suite, m.Mode)
	}
	return nil
}

// openKeyring loads the master key from the configured source and opens the
// keyring. On a brand-new store with no master key configured, it creates
// the master key file (0600) in the data directory.
func openKeyring(ctx context.Context, cfg config.Config, st eventstore.Store, log *slog.Logger) (*sealing.Keyring, error) {
	storage, ok := st.(eventstore.KeyringStorage)
	if !ok {
		return nil, errors.New("the store backend cannot keep a keyring")
	}
	_, loadErr := storage.LoadKeyring(ctx)
	fresh := errors.Is(loadErr, eventstore.ErrNoKeyring)
	if loadErr != nil && !fresh {
		return nil, fmt.Errorf("load keyring: %w", loadErr)
	}
	if fresh && cfg.ReadOnly {
		return nil, errors.New("--read-only: the store has no keyring (a new store: nothing to inspect)")
	}

	var master *sealing.MasterKey
	var err error
	switch {
	case cfg.MasterPassphraseFile != "":
		pass, rerr := os.ReadFile(cfg.MasterPassphraseFile)
		if rerr != nil {
			return nil, fmt.Errorf("master passphrase file: %w", rerr)
		}
		master, err = sealing.MasterKeyFromPassphrase([]byte(strings.TrimRight(string(pass), "\r\n")), sealing.KDFForSuite(cfg.Suite))
		clear(pass)
	case cfg.MasterKeyEnv != "":
		master, err = sealing.MasterKeyFromEnv(cfg.MasterKeyEnv)
	default:
		path := cfg.MasterKeyPath()
		master, err = sealing.LoadMasterKeyFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			if !fresh {
				return nil, fmt.Errorf("master key file %s is missing but the store already has a keyring: restore the key file from your backup", path)
			}
			if err = createMasterKeyFile(path); err != nil {
				return nil, err
			}
			log.Info("created a new master key file; back it up: without it the store cannot be read", "path", path)
			master, err = sealing.LoadMasterKeyFile(path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	defer master.Destroy()
	kr, err := sealing.OpenKeyring(ctx, storage, master)
	if err != nil {
		return nil, fmt.Errorf("open keyring: %w", err)
	}
	return kr, nil
}

func createMasterKeyFile(path string) error {
	key := make([]byte, sealing.KeySize)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	defer clear(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create master key file: %w", err)
	}
	buf := []byte(hex.EncodeToString(key) + "\n")
	defer clear(buf)
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return fmt.Errorf("write master key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync master key file: %w", err)
	}
	return f.Close()
}

// bootstrapAdminToken creates the first admin token when there is none and
// prints its secret once, to Out (never to the log).
func (s *Server) bootstrapAdminToken(ctx context.Context, out io.Writer) error {
	if len(s.svc.Tokens()) > 0 {
		return nil
	}
	if seen, err := s.waitClusterToken(ctx); err != nil || seen {
		return err
	}
	var f *os.File
	if path := s.cfg.AdminTokenFile; path != "" {
		// Created (exclusively, 0600) before the token exists: a path
		// that cannot be written must not cost the one chance to see it.
		var err error
		if f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return fmt.Errorf("admin token file: %w", err)
		}
		defer f.Close()
	}
	secret, _, err := s.svc.CreateToken(ctx, c2.Origin{Actor: "system:bootstrap"}, "admin", domain.TokenAdmin)
	if err != nil {
		if f != nil {
			_ = os.Remove(f.Name())
		}
		return fmt.Errorf("create the first admin token: %w", err)
	}
	if f != nil {
		if _, err := fmt.Fprintln(f, secret); err != nil {
			return fmt.Errorf("admin token file: %w", err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("admin token file: %w", err)
		}
		fmt.Fprintf(out, "admin API token written to %s (mode 0600)\n", f.Name())
		return nil
	}
	fmt.Fprintf(out, "admin API token (shown once; store it now, e.g. export E4C2_TOKEN=...):\n%s\n", secret)
	return nil
}

// checkDataDir refuses a data directory others may write to (they could
// swap the store or the master key) and warns when others may read it.
func checkDataDir(dir string, log *slog.Logger) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data directory %s is not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("data directory %s is writable by group or others (mode %04o): chmod 0700 it", dir, perm)
	} else if perm&0o077 != 0 {
		log.Warn("the data directory is readable by group or others; 0700 is expected", "dir", dir, "mode", fmt.Sprintf("%04o", perm))
	}
	return nil
}

func (s *Server) startBroker(ctx context.Context) error {
	// The monitor first: the embedded broker's publish tap feeds it.
	if err := s.newMonitor(); err != nil {
		return err
	}
	window := s.cfg.DeliveryWindow
	if s.cfg.Broker == "" {
		// Devices authenticate with their E4 credential and see only
		// their own control topic and their topics. The C2 hands a
		// command to a device only while it is online and counts it when
		// the device's own session completed QoS 2, so the broker's
		// persistence (sessions in the data directory) only spares
		// devices a resend: the C2's log is the outbox.
		s.presence = newPresence(s.svc, s.log.With("component", "presence"))
		var mqttTLS *tls.Config
		if s.cfg.MQTTTLSCertFile != "" {
			tc, r, err := tlsfiles.ServerConfig(s.cfg.MQTTTLSCertFile, s.cfg.MQTTTLSKeyFile, s.cfg.MQTTClientCAFile)
			if err != nil {
				return fmt.Errorf("embedded broker: %w", err)
			}
			mqttTLS = tc
			s.tlsReload = append(s.tlsReload, r)
		}
		b, err := broker.New(broker.Config{
			Address:             s.cfg.MQTTListen,
			TLS:                 mqttTLS,
			PersistPath:         filepath.Join(s.cfg.DataDir, "broker.db"),
			Logger:              s.log.With("component", "broker"),
			Authority:           deviceAuthority{svc: s.svc, clock: s.clock},
			Observer:            s.presence,
			AnonymousReadTopics: s.cfg.MQTTAnonymousRead,
			Tap:                 s.tap(),
		})
		if err != nil {
			return err
		}
		if err := b.Start(ctx); err != nil {
			return fmt.Errorf("embedded broker: %w", err)
		}
		s.broker = b
		s.pub = mqtt.NewInProcessDevices(b, window)
		return nil
	}
	tlsCfg, err := brokerTLS(s.cfg)
	if err != nil {
		return err
	}
	password := ""
	if s.cfg.BrokerPasswordFile != "" {
		b, err := os.ReadFile(s.cfg.BrokerPasswordFile)
		if err != nil {
			return fmt.Errorf("broker password file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	} else if v, ok := os.LookupEnv(config.EnvPrefix + "BROKER_PASSWORD"); ok {
		password = v
	}
	if window == 0 {
		window = mqtt.DefaultWindowExternal
	}
	p, err := mqtt.NewPaho(mqtt.PahoConfig{
		BrokerURL:   s.cfg.Broker,
		ClientID:    "e4c2-" + randomHex(6),
		Username:    s.cfg.BrokerUsername,
		Password:    password,
		TLS:         tlsCfg,
		MaxInflight: window,
	})
	if err != nil {
		return fmt.Errorf("external broker: %w", err)
	}
	s.paho, s.pub = p, p
	if s.cfg.DeviceAcks {
		s.presence = newPresence(s.svc, s.log.With("component", "presence"))
		a, err := mqtt.NewAcks(p, mqtt.AckConfig{
			Open: func(id [16]byte, protected []byte) ([]byte, error) {
				return s.svc.OpenDeviceAck(context.Background(), domain.ID(id), protected, s.clock())
			},
			Known: func(id [16]byte) bool {
				live, seen := s.svc.KeyState().Seen(domain.ID(id))
				return live && seen
			},
			OnOnline: func(id [16]byte) { s.presence.DeviceOnline(id, false) },
			Released: func(id [16]byte) bool { return s.svc.KeyState().ReleasedUnseen(domain.ID(id)) },
			Logger:   s.log.With("component", "acks"),
		})
		if err != nil {
			return err
		}
		s.pub = a
		s.wakeOnLog = true // releases of devices that never acknowledge
		return nil
	}
	// Without acks the C2 cannot see devices: it hands a device's commands
	// to the broker once it has a reason to think the device exists (an
	// operator released it, or deliver_unseen says every device does).
	// Before that, a broker would keep them for no session and lose them.
	s.wakeOnLog = true
	ks := s.svc.KeyState()
	unseen := s.cfg.DeliverUnseen
	s.pub = mqtt.Gate{Publisher: p, Ready: func(id [16]byte) bool { return unseen || ks.Deliverable(domain.ID(id)) }}
	if s.cfg.BrokerLogSightings {
		// mosquitto's subscription log names the authenticated username
		// (use_username_as_clientid): a device subscribing to its
		// control topic has a session that keeps its commands from now
		// on. It is recorded seen like an embedded-broker connection;
		// wakeOnRelease wakes the worker once the read model has it.
		s.presence = newPresence(s.svc, s.log.With("component", "presence"))
		p.Subscribe(mqtt.SubscribeLogTopic, func(_ string, payload []byte) {
			if id, ok := mqtt.ParseSubscribeLog(payload); ok {
				s.presence.DeviceOnline(id, false)
			}
		})
	}
	return nil
}

func brokerTLS(cfg config.Config) (*tls.Config, error) {
	if !strings.HasPrefix(cfg.Broker, "ssl://") && !strings.HasPrefix(cfg.Broker, "tls://") && !strings.HasPrefix(cfg.Broker, "mqtts://") {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.BrokerCAFile != "" {
		pem, err := os.ReadFile(cfg.BrokerCAFile)
		if err != nil {
			return nil, fmt.Errorf("broker CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("broker CA file %s holds no PEM certificate", cfg.BrokerCAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

func (s *Server) ready(ctx context.Context) error {
	// The backend's own health first: it answers at once, where a read
	// from a store whose server is unreachable waits for its retries.
	if err := storeHealth(s.store); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if _, err := s.store.ReadAll(ctx, s.svc.Position()+1, 1); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := s.svc.FollowErr(); err != nil {
		return fmt.Errorf("projections: %w", err)
	}
	if err := s.automationErr(); err != nil {
		return fmt.Errorf("automation: %w", err)
	}
	if err := s.haErr(); err != nil {
		return err
	}
	if s.pub == nil {
		return nil // read-only: no broker
	}
	if !s.pub.Connected() {
		return errors.New("broker: not connected")
	}
	return nil
}

func (s *Server) startHTTP() error {
	handler, closeAPI, err := s.apiHandler(promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	if err != nil {
		return err
	}
	s.closeAPI = closeAPI
	if s.cfg.ReadOnly {
		handler = readOnlyHandler(handler)
	}
	handler = s.backupHandler(handler)
	handler = s.positionHandler(handler)
	handler = s.leaseHeaderHandler(handler)
	ln, err := net.Listen("tcp", s.cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	if s.cfg.TLSCertFile != "" {
		tc, r, err := tlsfiles.ServerConfig(s.cfg.TLSCertFile, s.cfg.TLSKeyFile, "")
		if err != nil {
			ln.Close()
			return fmt.Errorf("http: %w", err)
		}
		s.tlsReload = append(s.tlsReload, r)
		ln = tls.NewListener(ln, tc)
	}
	s.httpLn = ln
	s.httpSrv = &nethttp.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	// Shutdown waits for active connections; open SSE streams end only when
	// the API is closed, so close it as shutdown begins.
	s.httpSrv.RegisterOnShutdown(closeAPI)
	go func() {
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, nethttp.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

func isConflict(err error) bool { return errors.Is(err, eventstore.ErrConflict) }

func parseLevel(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ReloadTLS reads the certificate files of both listeners again (SIGHUP);
// each listener also reloads on its own when its files change.
func (s *Server) ReloadTLS() error {
	var errs []error
	for _, r := range s.tlsReload {
		if err := r.Reload(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
