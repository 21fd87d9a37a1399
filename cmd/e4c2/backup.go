package main

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/server"
)

// Online backup and restore. e4c2 backup asks the running server for a
// consistent copy (one read transaction of the store, see
// internal/server/backup.go), writes it to a new 0700 directory with 0600
// files, checks every file against the manifest and verifies the copy's
// hash chains like e4c2 verify. e4c2 restore (server stopped) verifies a
// backup the same way, installs it in a data directory and verifies the
// result. Neither ever handles the master key: it is not in a backup, and
// the operator keeps it apart.

func newBackupCmd() *cobra.Command {
	o := &apiOpts{}
	var masterKeyFile string
	c := &cobra.Command{
		Use:   "backup DIR",
		Short: "online backup of the running server into a new directory (store, checkpoints, snapshots; never the master key)",
		Long: `Backup asks the running server (admin token) for a consistent copy of its
embedded store, taken in one read transaction while it keeps serving, with the
projection checkpoints and key-state snapshots, and writes it to DIR (created
0700; files 0600). Every file is checked against the backup's manifest, then the
copy's hash chains are verified as e4c2 verify does (and every sealed key opened
when --master-key-file is given).

The master key is NOT in the backup: keep it apart. A restore needs it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			tok, err := o.token()
			if err != nil {
				return err
			}
			if err := newPrivateDir(dir); err != nil {
				return err
			}
			m, err := fetchBackup(cmd.Context(), o.serverURL(), tok, dir)
			if err != nil {
				// A partial backup must not pass for one.
				_ = os.RemoveAll(dir)
				return err
			}
			rep, sealed, err := verifyBackupDir(cmd.Context(), dir, masterKeyFile)
			if err != nil {
				return fmt.Errorf("backup written to %s but it does not verify: %w", dir, err)
			}
			printBackupSummary(cmd.OutOrStdout(), "backup", dir, m, rep, sealed)
			return nil
		},
	}
	addAPIFlags(c, o)
	c.Flags().StringVar(&masterKeyFile, "master-key-file", "", "also open every sealed key of the copy with this master key (optional)")
	return c
}

func newRestoreCmd() *cobra.Command {
	o := &storeOpts{}
	var from string
	var force bool
	c := &cobra.Command{
		Use:   "restore --from DIR --data-dir D",
		Short: "install a backup made by e4c2 backup into a data directory (server stopped); verified before and after",
		Long: `Restore checks the backup in DIR against its manifest and verifies its hash
chains, copies it into the data directory (created 0700; files 0600) and
verifies the result. A data directory that already holds a store is refused
unless --force, which moves the old store, checkpoints and snapshots aside into
<data-dir>/before-restore-<time>/.

The master key is not in a backup: put it back (e.g. <data-dir>/master.key) from
where you keep it. When it is there (or given with --master-key-file), every
sealed key of the restored store is also opened with it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return errors.New("--from DIR is required")
			}
			cfg, err := o.load(cmd)
			if err != nil {
				return err
			}
			if kind, _ := cfg.StoreKind(); kind == config.StoreESDB || kind == config.StoreJetStream {
				return errors.New("restore installs an embedded store; for EventStoreDB or JetStream use e4c2 import")
			}
			ctx := cmd.Context()
			if _, _, err := verifyBackupDir(ctx, from, ""); err != nil {
				return fmt.Errorf("backup %s: %w", from, err)
			}
			m, err := readManifest(from)
			if err != nil {
				return err
			}
			if err := installBackup(ctx, from, cfg.DataDir, m, force); err != nil {
				return err
			}
			key := masterKeyIfPresent(cfg)
			rep, sealed, err := verifyBackupDir(ctx, cfg.DataDir, key)
			if err != nil {
				return fmt.Errorf("restored %s but it does not verify: %w", cfg.DataDir, err)
			}
			printBackupSummary(cmd.OutOrStdout(), "restored", cfg.DataDir, m, rep, sealed)
			if key == "" {
				fmt.Fprintf(cmd.OutOrStdout(), "put the master key back (e.g. %s) before e4c2 serve\n", filepath.Join(cfg.DataDir, "master.key"))
			}
			return nil
		},
	}
	c.Flags().StringVar(&from, "from", "", "backup directory made by e4c2 backup")
	c.Flags().BoolVar(&force, "force", false, "move an existing store aside instead of refusing")
	addStoreFlags(c, o)
	return c
}

// newPrivateDir creates dir 0700; an existing non-empty one is refused (a
// backup never mixes with other files).
func newPrivateDir(dir string) error {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("%s exists and is not empty", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("backup directory: %w", err)
	}
	return os.Chmod(dir, 0o700)
}

func fetchBackup(ctx context.Context, serverURL, token, dir string) (server.BackupManifest, error) {
	var m server.BackupManifest
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(serverURL, "/")+server.BackupPath, nil)
	if err != nil {
		return m, withHint(err, "set --server or "+envServer+" to the URL e4c2 serve prints")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return m, fmt.Errorf("backup request: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		_ = json.Unmarshal(b, &e)
		err := fmt.Errorf("backup refused: %s (%s)", resp.Status, e.Error.Code)
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			return m, withHint(err, "a backup needs an admin token ("+envToken+" or --token-file)")
		}
		return m, err
	}
	got := map[string]string{}
	tr := tar.NewReader(resp.Body)
	haveManifest := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return m, fmt.Errorf("backup stream: %w", err)
		}
		if h.Typeflag != tar.TypeReg || !filepath.IsLocal(h.Name) {
			return m, fmt.Errorf("backup stream: unexpected entry %q", h.Name)
		}
		if h.Name == server.BackupManifestName {
			b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
			if err != nil {
				return m, fmt.Errorf("backup manifest: %w", err)
			}
			if err := json.Unmarshal(b, &m); err != nil {
				return m, fmt.Errorf("backup manifest: %w", err)
			}
			if err := writeBackupFile(filepath.Join(dir, h.Name), strings.NewReader(string(b))); err != nil {
				return m, err
			}
			haveManifest = true
			continue
		}
		sum, err := writePrivateFileSum(filepath.Join(dir, filepath.FromSlash(h.Name)), tr)
		if err != nil {
			return m, err
		}
		got[h.Name] = sum
	}
	if !haveManifest {
		return m, errors.New("backup stream ended without its manifest (the server failed mid-way): incomplete")
	}
	for _, f := range m.Files {
		if got[f.Name] != f.SHA256 {
			return m, fmt.Errorf("backup file %s does not match the manifest", f.Name)
		}
	}
	return m, nil
}

func writeBackupFile(path string, r io.Reader) error {
	_, err := writePrivateFileSum(path, r)
	return err
}

// writePrivateFileSum writes a new 0600 file (parents 0700), synced, and
// returns the hex SHA-256 of its content.
func writePrivateFileSum(path string, r io.Reader) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func readManifest(dir string) (server.BackupManifest, error) {
	var m server.BackupManifest
	b, err := os.ReadFile(filepath.Join(dir, server.BackupManifestName))
	if err != nil {
		return m, fmt.Errorf("backup manifest: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("backup manifest: %w", err)
	}
	return m, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// verifyBackupDir checks a backup directory (or a restored data
// directory): with a manifest, every file matches it (a restored store
// file is checked against it too); then the store is verified as e4c2
// verify does: every page, every hash chain, and, given a master key file,
// every sealed key. The store is opened read-only: nothing is written.
func verifyBackupDir(ctx context.Context, dir, masterKeyFile string) (*eventstore.VerifyReport, int, error) {
	if m, err := readManifest(dir); err == nil {
		for _, f := range m.Files {
			sum, err := fileSHA256(filepath.Join(dir, filepath.FromSlash(f.Name)))
			if err != nil {
				return nil, 0, fmt.Errorf("%s: %w", f.Name, err)
			}
			if sum != f.SHA256 {
				return nil, 0, fmt.Errorf("%s does not match the manifest", f.Name)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, 0, err
	}
	st, err := openStoreMode(ctx, filepath.Join(dir, "e4c2.db"), true, true)
	if err != nil {
		return nil, 0, err
	}
	defer st.Close()
	if fc, ok := st.(interface{ CheckFile(context.Context) error }); ok {
		if err := fc.CheckFile(ctx); err != nil {
			return nil, 0, err
		}
	}
	rep, err := requireIntactChain(ctx, st)
	if err != nil {
		return nil, 0, err
	}
	if masterKeyFile == "" {
		return rep, -1, nil
	}
	cfg := config.Default()
	cfg.DataDir, cfg.MasterKeyFile = dir, masterKeyFile
	kr, err := openKeyringOffline(ctx, cfg, st)
	if err != nil {
		return nil, 0, err
	}
	defer kr.Close()
	n, err := verifySealed(ctx, st, kr)
	return rep, n, err
}

// masterKeyIfPresent returns the master key file a restore can check the
// sealed keys with: --master-key-file, or <data-dir>/master.key if there.
func masterKeyIfPresent(cfg config.Config) string {
	p := cfg.MasterKeyPath()
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// installBackup copies the backup's files into dataDir (0700; files 0600,
// written to a temporary name, synced and renamed).
func installBackup(ctx context.Context, from, dataDir string, m server.BackupManifest, force bool) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	db := filepath.Join(dataDir, "e4c2.db")
	if _, err := os.Stat(db); err == nil {
		if !force {
			return withHint(fmt.Errorf("%s already holds a store", dataDir), "restore into a new --data-dir, or pass --force to move the old store aside")
		}
		// A running server holds the file: refuse rather than pull it
		// from under it.
		st, err := openStoreMode(ctx, db, true, true)
		if err != nil {
			return err
		}
		st.Close()
		aside := filepath.Join(dataDir, "before-restore-"+time.Now().UTC().Format("20060102T150405Z"))
		if err := os.Mkdir(aside, 0o700); err != nil {
			return err
		}
		old := []string{"e4c2.db", "e4c2.db.pos", "e4c2.db.clean", "broker.db", "snapshots"}
		cps, _ := filepath.Glob(filepath.Join(dataDir, "*.checkpoint"))
		for _, p := range cps {
			old = append(old, filepath.Base(p))
		}
		for _, n := range old {
			if err := os.Rename(filepath.Join(dataDir, n), filepath.Join(aside, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("move aside %s: %w", n, err)
			}
		}
	}
	// A position sidecar of another store would make the restored one
	// look truncated.
	_ = os.Remove(db + ".pos")
	for _, f := range m.Files {
		src, err := os.Open(filepath.Join(from, filepath.FromSlash(f.Name)))
		if err != nil {
			return err
		}
		dst := filepath.Join(dataDir, filepath.FromSlash(f.Name))
		tmp := dst + ".restoring"
		_ = os.Remove(tmp)
		sum, err := writePrivateFileSum(tmp, src)
		src.Close()
		if err != nil {
			return err
		}
		if sum != f.SHA256 {
			_ = os.Remove(tmp)
			return fmt.Errorf("%s changed while being restored", f.Name)
		}
		if err := os.Rename(tmp, dst); err != nil {
			return err
		}
	}
	if d, err := os.Open(dataDir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return writeBackupFile(filepath.Join(dataDir, "restored-from.json"), strings.NewReader(fmt.Sprintf(
		`{"from":%q,"position":%d,"created":%q}`+"\n", from, m.Position, m.Created.Format(time.RFC3339))))
}

func printBackupSummary(w io.Writer, what, dir string, m server.BackupManifest, rep *eventstore.VerifyReport, sealed int) {
	fmt.Fprintf(w, "%s: %s: %d events in %d streams (position %d), hash chains intact", what, dir, rep.Records, rep.Streams, m.Position)
	if sealed >= 0 {
		fmt.Fprintf(w, "; %d sealed keys open with the master key", sealed)
	}
	fmt.Fprintln(w)
	for _, s := range m.Skipped {
		fmt.Fprintf(w, "not included: %s\n", s)
	}
	fmt.Fprintln(w, "the master key is not in the backup: keep it apart, a restore needs it")
}
