package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/suites"
)

// checkOutPath checks a --out file before anything is created on the
// server: a token or an exported key whose file then cannot be written is
// a secret shown nowhere (a token nobody holds, an export audited for
// nothing). The file must not exist (unless force), must never be a
// symbolic link (the secret would land wherever it points), and its
// directory must exist and be writable (probed by creating and removing a
// temporary file there, which also covers ACLs and read-only mounts).
func checkOutPath(path string, force bool) error {
	fi, err := os.Lstat(path)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		return withHint(fmt.Errorf("%s is a symbolic link", path), "give the path of a regular file; the secret is never written through a link")
	case err == nil && fi.IsDir():
		return fmt.Errorf("%s is a directory", path)
	case err == nil && !force:
		return withHint(fmt.Errorf("%s already exists", path), "pass --force to overwrite it")
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("--out %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	probe, err := os.CreateTemp(dir, ".e4c2-out-check-*")
	if err != nil {
		return withHint(fmt.Errorf("cannot write in %s: %w", dir, err), "create the directory or choose a writable one")
	}
	probe.Close()
	return os.Remove(probe.Name())
}

// addOfflineTokenCreate makes "token create" work without a server:
// with --data-dir (or --store, --config) it opens the store directly, like
// the other offline commands, and appends the token.created.v1 itself
// (actor "cli:<user>"). It is the recovery path when no admin token is
// left: stop the server, create one, start the server. The API path is
// unchanged when none of these flags is given.
func addOfflineTokenCreate(create *cobra.Command, role, out *string, force *bool, asJSON func() bool) {
	so := &storeOpts{}
	addStoreFlags(create, so)
	online := create.RunE
	create.RunE = func(cmd *cobra.Command, args []string) error {
		f := cmd.Flags()
		if !f.Changed("data-dir") && !f.Changed("store") && !f.Changed("config") {
			return online(cmd, args)
		}
		if *out != "" {
			if err := checkOutPath(*out, *force); err != nil {
				return err
			}
		}
		r, err := domain.ParseTokenRole(*role)
		if err != nil {
			return err
		}
		var secret string
		err = withStore(cmd, so, func(ctx context.Context, cfg config.Config, st eventstore.Store) error {
			secret, err = createTokenOffline(ctx, cfg, st, args[0], r)
			return err
		})
		if err != nil {
			return err
		}
		name := safeText(args[0], false)
		if *out != "" {
			if err := writeSecretFile(*out, secret, *force); err != nil {
				return err
			}
			secret = ""
		}
		if asJSON() {
			v := map[string]string{"name": args[0], "role": r.String()}
			if secret != "" {
				v["secret"] = secret
			}
			return printJSON(cmd.OutOrStdout(), v)
		}
		if *out != "" {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "token %s (%s) written to %s\n", name, r, *out)
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "token %s (%s) created offline; its secret is shown once:\n", name, r)
		_, err = fmt.Fprintln(cmd.OutOrStdout(), secret)
		return err
	}
}

// createTokenOffline appends the token through the service over the
// store, so the same decision (name policy, no reuse of a revoked name)
// applies as through the API.
func createTokenOffline(ctx context.Context, cfg config.Config, st eventstore.Store, name string, role domain.TokenRole) (string, error) {
	recs, err := st.ReadAll(ctx, 1, 1)
	if err != nil {
		return "", fmt.Errorf("read store: %w", err)
	}
	if len(recs) == 0 {
		return "", withHint(errors.New("the store is empty"), "start e4c2 serve once: it creates the first admin token itself")
	}
	mode, err := suites.ParseMode(recs[0].Meta.Mode)
	if err != nil {
		return "", fmt.Errorf("the log's mode: %w", err)
	}
	suite, err := suites.ForMode(recs[0].Meta.Suite, mode)
	if err != nil {
		return "", fmt.Errorf("the log's suite: %w", err)
	}
	kr, err := openKeyringOffline(ctx, cfg, st)
	if err != nil {
		return "", err
	}
	svc, err := c2.New(c2.Config{Store: st, Sealer: kr, Suite: suite, Mode: mode})
	if err != nil {
		return "", err
	}
	defer svc.Close()
	secret, _, err := svc.CreateToken(ctx, c2.Origin{Actor: cliActor()}, name, role)
	if err != nil {
		var oe *domain.OpError
		if errors.As(err, &oe) && errors.Is(err, domain.ErrTokenNameRevoked) {
			return "", withHint(err, "token names are never reused: choose another name")
		}
		return "", err
	}
	return secret, nil
}
