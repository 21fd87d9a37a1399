package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/e4c2/e4c2/client/credential"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/sealing"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/mosquittocfg"
	"github.com/e4c2/e4c2/projections"
)

// broker-config is an offline command, like replay and export, rather than
// an API endpoint: the SK passwords are HMACs under the devices' identity
// keys, so generating them needs the master key and the sealed keys. Run
// where the store and master key already are, the keys never cross a
// network and no new API surface can hand out credentials that let a
// caller impersonate any device at the broker. The price: the embedded
// store is single-writer, so the server is stopped while it runs (an
// EventStoreDB store can be read while the server runs).

func newBrokerConfigCmd() *cobra.Command {
	o := &storeOpts{}
	var out, c2User, c2PassFile, listener string
	var force, sightings bool
	c := &cobra.Command{
		Use:   "broker-config --out DIR --c2-username NAME --c2-password-file FILE",
		Short: "write mosquitto password, ACL and config files confining each device to its topics (server stopped)",
		Long: `broker-config replays the log (server stopped, as for replay) and writes, for
an external mosquitto 2.x broker, into --out DIR (mode 0600):

  password_file           the C2's user and every SK device (username = hex id,
                          password = its E4 SK credential), hashed as
                          mosquitto_passwd does ($7$, PBKDF2-SHA512)
  acl_file                the C2: readwrite on everything; each device: read
                          e4/<hex id>, write e4c2ack/<hex id>, read its
                          attached topics, write them if its role is publisher
                          or both; nothing else
  mosquitto.conf.snippet  the lines to include in mosquitto.conf

The SK passwords need the identity keys, hence the master key (same flags as
serve; a log of PK clients only is read without it). Keys are unsealed one at a time for the HMAC and wiped; nothing secret
is printed. PK devices get ACL lines but no password: their password is a
signed message that expires after 10 minutes and cannot live in a static file;
authenticate them with TLS client certificates (see docs/external-broker.md).

Run it again after clients, keys or topics change and send mosquitto SIGHUP.`,
		Example: `  e4c2 broker-config --data-dir /var/lib/e4c2 --out /etc/mosquitto/e4c2 \
      --c2-username e4c2 --c2-password-file /etc/e4c2/mqtt.password --force
  kill -HUP $(pidof mosquitto)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return withHint(errors.New("--out is required"), "pass the directory mosquitto will read the files from, e.g. --out /etc/mosquitto/e4c2")
			}
			if err := mosquittocfg.ValidateC2Username(c2User); err != nil {
				return withHint(fmt.Errorf("--c2-username: %w", err), "pass the MQTT username the C2 connects with (serve's broker username)")
			}
			if err := mosquittocfg.ValidateListener(listener); err != nil {
				return withHint(fmt.Errorf("--listener: %w", err), "pass a port (8883) or HOST:PORT (0.0.0.0:8883, [::]:8883)")
			}
			if c2PassFile == "" {
				return withHint(errors.New("--c2-password-file is required"), "put the C2's MQTT password in a file readable only by you; it is never taken as a flag value")
			}
			pass, err := readPasswordFile(c2PassFile)
			if err != nil {
				return err
			}
			defer clear(pass)
			dir, err := filepath.Abs(out)
			if err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			paths := map[string]string{}
			for _, n := range []string{mosquittocfg.PasswordFileName, mosquittocfg.ACLFileName, mosquittocfg.SnippetFileName} {
				paths[n] = filepath.Join(dir, n)
				if force {
					continue
				}
				if _, err := os.Lstat(paths[n]); err == nil {
					return withHint(fmt.Errorf("%s already exists", paths[n]), "pass --force to overwrite the generated files")
				} else if !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("--out: %w", err)
				}
			}
			return withStore(cmd, o, func(ctx context.Context, cfg config.Config, st eventstore.Store) error {
				ks := projections.NewKeyState()
				last, err := projections.Rebuild(ctx, st, projections.AsOf{}, ks)
				if err != nil {
					return fmt.Errorf("replay: %w", err)
				}
				// Only SK passwords need the master key: a PK-only log
				// is read without it.
				var sealer sealing.Sealer
				if mosquittocfg.NeedsKeys(ks) {
					kr, err := openKeyringOffline(ctx, cfg, st)
					if err != nil {
						return err
					}
					defer kr.Close()
					sealer = kr
				}
				devs, err := mosquittocfg.Collect(ctx, ks, st, sealer)
				if err != nil {
					return withHint(fmt.Errorf("collect devices: %w", err), "run e4c2 verify: every sealed key must open with this master key")
				}
				files, err := mosquittocfg.Generate(mosquittocfg.Config{
					C2Username:   c2User,
					C2Password:   pass,
					Devices:      devs,
					PasswordFile: paths[mosquittocfg.PasswordFileName],
					ACLFile:      paths[mosquittocfg.ACLFileName],
					Listener:     listener,
					Sightings:    sightings,
					Header: fmt.Sprintf("Generated by e4c2 broker-config from the log at position %d.\n"+
						"Do not edit: run it again after clients, keys or topics change, then send mosquitto SIGHUP.", last),
				})
				if err != nil {
					return withHint(err, "check --c2-username and the C2 password file (one line)")
				}
				if err := os.MkdirAll(dir, 0o700); err != nil {
					return fmt.Errorf("--out: %w", err)
				}
				for _, w := range []struct {
					name string
					b    []byte
				}{
					{mosquittocfg.PasswordFileName, files.Password},
					{mosquittocfg.ACLFileName, files.ACL},
					{mosquittocfg.SnippetFileName, files.Snippet},
				} {
					if err := writePrivateFile(paths[w.name], w.b); err != nil {
						return err
					}
				}
				return printBrokerConfig(cmd, dir, c2User, last, files)
			})
		},
	}
	f := c.Flags()
	f.StringVar(&out, "out", "", "directory to write password_file, acl_file and mosquitto.conf.snippet into (created 0700)")
	f.StringVar(&c2User, "c2-username", "", "MQTT username of the C2 (readwrite on every topic)")
	f.StringVar(&c2PassFile, "c2-password-file", "", "file holding the C2's MQTT password (the one serve reads with --broker-password-file)")
	f.StringVar(&listener, "listener", "", "also put a listener block for [HOST:]PORT in the snippet")
	f.BoolVar(&sightings, "sightings", false, "let the C2 see devices subscribe (serve --broker-log-sightings): mosquitto logs subscriptions on a topic the C2 may read")
	f.BoolVar(&force, "force", false, "overwrite the files of a previous run")
	addStoreFlags(c, o)
	return c
}

func printBrokerConfig(cmd *cobra.Command, dir, c2User string, last uint64, files mosquittocfg.Files) error {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "wrote %s: C2 user %q and %d SK devices in %s, %d devices in %s, and %s (log position %d)\n",
		dir, c2User, files.SKDevices, mosquittocfg.PasswordFileName, files.SKDevices+files.PKDevices,
		mosquittocfg.ACLFileName, mosquittocfg.SnippetFileName, last)
	if files.PKDevices > 0 {
		fmt.Fprintf(w, "%d PK devices have ACL lines but no password: a PK password is a signed message that expires\n"+
			"after %s and cannot be a line of a static password file. Authenticate them with TLS client\n"+
			"certificates (require_certificate, use_identity_as_username, CN = hex id): see docs/external-broker.md\n",
			files.PKDevices, credential.Window.MaxAge)
	}
	for _, s := range files.Skipped {
		fmt.Fprintf(cmd.ErrOrStderr(), "e4c2: warning: topic %q of client %s left out of the ACL: %s\n", s.Topic, s.Device, s.Reason)
	}
	_, err := fmt.Fprintf(w, "next: let the broker's user read the files (mosquitto reads them after dropping privileges:\n"+
		"chown mosquitto: %s %s), include %s in mosquitto.conf (once), then send mosquitto SIGHUP to reload\n",
		filepath.Join(dir, mosquittocfg.PasswordFileName), filepath.Join(dir, mosquittocfg.ACLFileName),
		filepath.Join(dir, mosquittocfg.SnippetFileName))
	return err
}

// readPasswordFile returns the password in a file as serve reads
// --broker-password-file (trailing line breaks dropped), so the same file
// serves both. The caller wipes it.
func readPasswordFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, withHint(fmt.Errorf("--c2-password-file: %w", err), "pass the file serve reads with --broker-password-file")
	}
	defer clear(b)
	line := bytes.TrimRight(b, "\r\n")
	if len(line) == 0 {
		return nil, withHint(fmt.Errorf("--c2-password-file: %s is empty", path), "put the C2's MQTT password in it, on one line")
	}
	if bytes.ContainsAny(line, "\r\n") {
		return nil, withHint(fmt.Errorf("--c2-password-file: %s holds more than one line", path), "put the C2's MQTT password in it, on one line")
	}
	return bytes.Clone(line), nil
}

// writePrivateFile writes b to path with mode 0600 through a temporary file
// this call creates (a stale one, or a link planted there, is removed, not
// followed) and a rename, so mosquitto never reads half a file on reload.
func writePrivateFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	err = f.Chmod(0o600) // OpenFile applies the umask; say what we promise
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
