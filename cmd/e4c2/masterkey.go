package main

import (
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
				kr, err := openKeyringOffline(ctx, cfg, st)
				if err != nil {
					return err
				}
				defer kr.Close()
				next, err := loadNewMaster(ctx, cfg, st, newFile, newPassFile, generate)
				if err != nil {
					return err
				}
				defer next.Destroy()
				if err := kr.Rotate(ctx, next); err != nil {
					return fmt.Errorf("rotate master key: %w", err)
				}
				// Prove the new key opens everything before saying so.
				check := cfg
				check.MasterKeyFile, check.MasterKeyEnv, check.MasterPassphraseFile = newFile, "", newPassFile
				kr2, err := openKeyringOffline(ctx, check, st)
				if err != nil {
					return fmt.Errorf("reopen with the new master key: %w", err)
				}
				defer kr2.Close()
				n, err := verifySealed(ctx, st, kr2)
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
