package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/sealing"
	"github.com/e4c2/e4c2/internal/config"
)

// newMasterKeyCmd is `e4c2 master-key rotate`: re-wrap the store's data keys
// under a new master key. The log is not rewritten (only the keyring beside
// it), so the rotation is quick whatever the size of the log.
func newMasterKeyCmd() *cobra.Command {
	o := &storeOpts{}
	var newFile, newPassFile string
	var generate bool
	rotate := &cobra.Command{
		Use:   "rotate (--new-key-file FILE [--generate] | --new-passphrase-file FILE)",
		Short: "re-wrap the data keys under a new master key (server stopped; the log is not rewritten)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (newFile == "") == (newPassFile == "") {
				return withHint(errors.New("give exactly one of --new-key-file and --new-passphrase-file"),
					"e4c2 master-key rotate --new-key-file new.key --generate creates a random key")
			}
			if generate && newFile == "" {
				return errors.New("--generate goes with --new-key-file")
			}
			return withStore(cmd, o, func(ctx context.Context, cfg config.Config, st eventstore.Store) error {
				n, err := rotateMasterKey(ctx, cfg, st, newFile, newPassFile, generate)
				if err != nil {
					return err
				}
				where := "--master-key-file " + newFile
				if newPassFile != "" {
					where = "--master-passphrase-file " + newPassFile
				}
				fmt.Fprintf(cmd.OutOrStdout(), "master key rotated: %d sealed keys open with the new key; start e4c2 with %s and destroy the old key once you have a backup of the new one\n", n, where)
				return nil
			})
		},
	}
	f := rotate.Flags()
	f.StringVar(&newFile, "new-key-file", "", "the new master key file (hex, mode 0600)")
	f.BoolVar(&generate, "generate", false, "create --new-key-file with a random key (refuses to overwrite)")
	f.StringVar(&newPassFile, "new-passphrase-file", "", "derive the new master key from the passphrase in this file")
	addStoreFlags(rotate, o)
	c := &cobra.Command{Use: "master-key", Short: "Manage the master key that wraps the store's data keys", Args: cobra.NoArgs}
	c.AddCommand(rotate)
	return c
}

func loadNewMaster(ctx context.Context, cfg config.Config, st eventstore.Store, keyFile, passFile string, generate bool) (*sealing.MasterKey, error) {
	if passFile != "" {
		pass, err := os.ReadFile(passFile)
		if err != nil {
			return nil, fmt.Errorf("new passphrase file: %w", err)
		}
		defer clear(pass)
		suite, err := logSuite(ctx, st)
		if err != nil {
			return nil, err
		}
		if suite == "" {
			suite = cfg.Suite
		}
		return sealing.MasterKeyFromPassphrase([]byte(strings.TrimRight(string(pass), "\r\n")), sealing.KDFForSuite(suite))
	}
	if generate {
		key := make([]byte, sealing.KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		err := writeKeyFile(keyFile, key, 0o600, false)
		clear(key)
		if err != nil {
			return nil, err
		}
	}
	m, err := sealing.LoadMasterKeyFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("new master key: %w", err)
	}
	return m, nil
}

// memKeyring is a KeyringStorage in memory: the staging area of a
// rotation, so the new keyring is written, reopened and checked before it
// replaces the stored one.
type memKeyring struct{ raw []byte }

func (m *memKeyring) LoadKeyring(context.Context) ([]byte, error) {
	if m.raw == nil {
		return nil, eventstore.ErrNoKeyring
	}
	return append([]byte(nil), m.raw...), nil
}

func (m *memKeyring) SaveKeyring(_ context.Context, b []byte) error {
	m.raw = append([]byte(nil), b...)
	return nil
}

// errRotationCommitted marks a failure after the new keyring replaced the
// old one: the old master key no longer opens the store.
var errRotationCommitted = errors.New("rotation committed: use the new key")

// rotateMasterKey re-wraps the keyring under the new master key in three
// steps, so that a failure never leaves the store without a working key:
//
//  1. stage: the keyring is rotated in memory, reopened there with the new
//     key and every sealed key of the log is opened with it; a failure
//     here changes nothing on disk and the old key keeps working;
//  2. commit: the staged keyring replaces the stored one in one
//     transaction;
//  3. check: the stored keyring is read back and opened with the new key.
//     A failure here says the rotation is committed (the new key is the
//     one to use) and exits 1.
func rotateMasterKey(ctx context.Context, cfg config.Config, st eventstore.Store, newFile, newPassFile string, generate bool) (int, error) {
	storage, ok := st.(eventstore.KeyringStorage)
	if !ok {
		return 0, errors.New("the store backend cannot keep a keyring")
	}
	old, err := storage.LoadKeyring(ctx)
	if err != nil {
		return 0, fmt.Errorf("load keyring: %w", err)
	}
	// 1. Stage: rotate a copy of the keyring in memory and prove the new
	// key opens every sealed key of the log with it.
	stage := &memKeyring{raw: old}
	oldMaster, err := loadMasterOffline(ctx, cfg, st)
	if err != nil {
		return 0, err
	}
	skr, err := openKeyringWith(ctx, stage, oldMaster)
	oldMaster.Destroy()
	if err != nil {
		return 0, err
	}
	defer func() { _ = skr.Close() }()
	next, err := loadNewMaster(ctx, cfg, st, newFile, newPassFile, generate)
	if err != nil {
		return 0, err
	}
	defer next.Destroy()
	unchanged := func(err error) error {
		return withHint(fmt.Errorf("rotate master key: %w", err), "nothing was changed: the old master key still opens the store")
	}
	err = skr.Rotate(ctx, next)
	if err != nil {
		return 0, unchanged(err)
	}
	nkr, err := openKeyringWith(ctx, stage, next)
	if err != nil {
		return 0, unchanged(fmt.Errorf("reopen the staged keyring with the new key: %w", err))
	}
	_, err = verifySealed(ctx, st, nkr)
	_ = nkr.Close()
	if err != nil {
		return 0, unchanged(fmt.Errorf("check the staged keyring: %w", err))
	}
	// 2. Commit.
	if err := storage.SaveKeyring(ctx, stage.raw); err != nil {
		return 0, withHint(fmt.Errorf("rotate master key: save keyring: %w", err),
			"the old master key should still open the store: run e4c2 verify with it, and with the new key if it does not")
	}
	// 3. Check what was committed.
	n, err := checkCommitted(ctx, st, storage, stage.raw, next)
	if err != nil {
		return 0, withHint(fmt.Errorf("%w: %w", errRotationCommitted, err),
			"the new keyring is stored: keep the new key, and run e4c2 verify with it")
	}
	return n, nil
}

// checkCommitted reads the stored keyring back and opens every sealed key
// of the log with the new master key. A variable so a test can make the
// check fail after the commit.
var checkCommitted = func(ctx context.Context, st eventstore.Store, storage eventstore.KeyringStorage, want []byte, next *sealing.MasterKey) (int, error) {
	got, err := storage.LoadKeyring(ctx)
	if err != nil {
		return 0, fmt.Errorf("read back the keyring: %w", err)
	}
	if !bytes.Equal(got, want) {
		return 0, errors.New("the stored keyring is not the one written")
	}
	kr, err := openKeyringWith(ctx, storage, next)
	if err != nil {
		return 0, err
	}
	defer kr.Close()
	return verifySealed(ctx, st, kr)
}
