package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/boltstore"
	"github.com/e4c2/e4c2/eventstore/esdb"
	"github.com/e4c2/e4c2/eventstore/jetstream"
	"github.com/e4c2/e4c2/eventstore/sealing"
	"github.com/e4c2/e4c2/internal/config"
)

// Offline commands (replay, audit --offline, verify, export, import) open
// the store directly, with the same store and master-key settings as
// serve. The embedded file has a single writer, so the server must be
// stopped; a locked file is reported as such instead of hanging.

// storeOpts are the store flags, the subset of serve's that locate a log
// and its master key.
type storeOpts struct {
	cfg        config.Config
	configFile string
	// readOnly opens the embedded file read-only: the command only reads
	// (verify, replay, audit, export), so it changes nothing in the file
	// and works on an immutable copy or a full disk.
	readOnly bool
}

func addStoreFlags(cmd *cobra.Command, o *storeOpts) {
	o.cfg = config.Default()
	f := cmd.Flags()
	f.StringVar(&o.configFile, "config", "", "JSON configuration file (as for serve)")
	f.StringVar(&o.cfg.DataDir, "data-dir", o.cfg.DataDir, "data directory of the server")
	f.StringVar(&o.cfg.Store, "store", o.cfg.Store, "store: empty for <data-dir>/e4c2.db, a .db path, an esdb:// URL or a nats:// (JetStream) URL")
	f.StringVar(&o.cfg.MasterKeyFile, "master-key-file", o.cfg.MasterKeyFile, "master key file (default <data-dir>/master.key)")
	f.StringVar(&o.cfg.MasterKeyEnv, "master-key-env", o.cfg.MasterKeyEnv, "name of an environment variable holding the master key")
	f.StringVar(&o.cfg.MasterPassphraseFile, "master-passphrase-file", o.cfg.MasterPassphraseFile, "file holding the master passphrase")
}

// load applies defaults < --config < E4C2_* environment < flags, as serve
// does.
func (o *storeOpts) load(cmd *cobra.Command) (config.Config, error) {
	c := config.Default()
	if o.configFile != "" {
		if err := c.LoadFile(o.configFile); err != nil {
			return c, err
		}
	}
	if err := c.LoadEnv(os.LookupEnv); err != nil {
		return c, err
	}
	cmd.Flags().Visit(func(f *pflag.Flag) {
		switch f.Name {
		case "data-dir":
			c.DataDir = o.cfg.DataDir
		case "store":
			c.Store = o.cfg.Store
		case "master-key-file":
			c.MasterKeyFile = o.cfg.MasterKeyFile
		case "master-key-env":
			c.MasterKeyEnv = o.cfg.MasterKeyEnv
		case "master-passphrase-file":
			c.MasterPassphraseFile = o.cfg.MasterPassphraseFile
		}
	})
	return c, nil
}

// lockTimeout is how long an offline command waits for the embedded
// file's lock before reporting that a server holds it.
const lockTimeout = 500 * time.Millisecond

// openStoreAt opens a store named by a path or an esdb:// URL. With
// mustExist, a missing embedded file is an error instead of a new store.
func openStoreAt(ctx context.Context, where string, mustExist bool) (eventstore.Store, error) {
	return openStoreMode(ctx, where, mustExist, false)
}

// openStoreMode is openStoreAt, read-only when readOnly (the embedded
// file; EventStoreDB is only read by a read-only command anyway).
func openStoreMode(ctx context.Context, where string, mustExist, readOnly bool) (eventstore.Store, error) {
	if jetstream.IsURL(where) {
		st, err := jetstream.Open(ctx, where, nil)
		if err != nil {
			return nil, fmt.Errorf("jetstream: %w", config.RedactedError{Err: err})
		}
		return st, nil
	}
	if isESDB(where) {
		st, err := esdb.Open(ctx, where, nil)
		if err != nil {
			return nil, fmt.Errorf("eventstoredb: %w", config.RedactedError{Err: err})
		}
		return st, nil
	}
	if mustExist {
		if _, err := os.Stat(where); errors.Is(err, fs.ErrNotExist) {
			return nil, withHint(fmt.Errorf("no store at %s", config.RedactStoreURL(where)), "pass the server's --data-dir or --store")
		}
	}
	st, err := boltstore.Open(where, &boltstore.Options{LockTimeout: lockTimeout, ReadOnly: readOnly})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, withHint(fmt.Errorf("the store %s is locked by another process", config.RedactStoreURL(where)),
				"stop e4c2 serve first: offline commands need the embedded store to themselves")
		}
		return nil, storeError(where, fmt.Errorf("embedded store %s: %w", where, err))
	}
	return st, nil
}

func isESDB(s string) bool {
	for _, p := range []string{"esdb://", "esdb+discover://", "kurrentdb://", "kurrent://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// storeLocation returns the configured store as a path or URL.
func storeLocation(cfg config.Config) string {
	_, where := cfg.StoreKind()
	return where
}

// logSuite returns the suite recorded in the log's first event ("" when
// the log is empty): the passphrase KDF depends on it.
func logSuite(ctx context.Context, st eventstore.Store) (string, error) {
	recs, err := st.ReadAll(ctx, 1, 1)
	if err != nil {
		return "", fmt.Errorf("read store: %w", err)
	}
	if len(recs) == 0 {
		return "", nil
	}
	return recs[0].Meta.Suite, nil
}

// openKeyringOffline loads the master key as configured and opens the
// store's keyring. Unlike serve it never creates a master key.
func openKeyringOffline(ctx context.Context, cfg config.Config, st eventstore.Store) (*sealing.Keyring, error) {
	storage, ok := st.(eventstore.KeyringStorage)
	if !ok {
		return nil, errors.New("the store backend cannot keep a keyring")
	}
	master, err := loadMasterOffline(ctx, cfg, st)
	if err != nil {
		return nil, err
	}
	defer master.Destroy()
	return openKeyringWith(ctx, storage, master)
}

// openKeyringWith opens the keyring kept in storage with master.
func openKeyringWith(ctx context.Context, storage eventstore.KeyringStorage, master *sealing.MasterKey) (*sealing.Keyring, error) {
	kr, err := sealing.OpenKeyring(ctx, storage, master)
	if err != nil {
		if errors.Is(err, sealing.ErrWrongMasterKey) {
			return nil, withHint(fmt.Errorf("open keyring: %w", err), "this is not the master key the store was created with")
		}
		return nil, fmt.Errorf("open keyring: %w", err)
	}
	return kr, nil
}

// loadMasterOffline loads the master key from the configured source. The
// caller destroys it.
func loadMasterOffline(ctx context.Context, cfg config.Config, st eventstore.Store) (*sealing.MasterKey, error) {
	var master *sealing.MasterKey
	var err error
	switch {
	case cfg.MasterPassphraseFile != "":
		pass, rerr := os.ReadFile(cfg.MasterPassphraseFile)
		if rerr != nil {
			return nil, fmt.Errorf("master passphrase file: %w", rerr)
		}
		suite, serr := logSuite(ctx, st)
		if serr != nil {
			clear(pass)
			return nil, serr
		}
		if suite == "" {
			suite = cfg.Suite
		}
		master, err = sealing.MasterKeyFromPassphrase([]byte(strings.TrimRight(string(pass), "\r\n")), sealing.KDFForSuite(suite))
		clear(pass)
	case cfg.MasterKeyEnv != "":
		master, err = sealing.MasterKeyFromEnv(cfg.MasterKeyEnv)
	default:
		master, err = sealing.LoadMasterKeyFile(cfg.MasterKeyPath())
		if errors.Is(err, fs.ErrNotExist) {
			return nil, withHint(fmt.Errorf("master key file %s is missing", cfg.MasterKeyPath()),
				"pass --master-key-file (or --master-key-env / --master-passphrase-file) as for serve")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return master, nil
}

// withStore opens the configured store (which must exist), runs fn and
// closes it.
func withStore(cmd *cobra.Command, o *storeOpts, fn func(ctx context.Context, cfg config.Config, st eventstore.Store) error) error {
	cfg, err := o.load(cmd)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	where := storeLocation(cfg)
	st, err := openStoreMode(ctx, where, true, o.readOnly)
	if err != nil {
		return err
	}
	ferr := storeError(where, fn(ctx, cfg, st))
	if cerr := st.Close(); cerr != nil && ferr == nil {
		ferr = fmt.Errorf("close store: %w", cerr)
	}
	return ferr
}

// parsePointInTime reads an --as-of / --since value: a global position,
// an RFC 3339 time, or a duration meaning "that long ago".
func parsePointInTime(s string, now time.Time) (pos uint64, t time.Time, err error) {
	if s == "" {
		return 0, time.Time{}, nil
	}
	if n, perr := parseUint(s); perr == nil {
		return n, time.Time{}, nil
	}
	if t, terr := time.Parse(time.RFC3339Nano, s); terr == nil {
		return 0, t, nil
	}
	if d, derr := time.ParseDuration(s); derr == nil && d >= 0 {
		return 0, now.Add(-d), nil
	}
	return 0, time.Time{}, fmt.Errorf("%q is neither a position, an RFC 3339 time nor a duration", s)
}

func parseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration (e.g. 1h)", s)
}

func parseUint(s string) (uint64, error) {
	var n uint64
	if s == "" {
		return 0, errors.New("empty")
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, errors.New("not a number")
		}
		d := uint64(r - '0')
		if n > (^uint64(0)-d)/10 {
			return 0, errors.New("overflow")
		}
		n = n*10 + d
	}
	return n, nil
}

// mkdirFor creates the parent directory of a store file (0700: it holds
// the master key too).
func mkdirFor(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return nil
}
