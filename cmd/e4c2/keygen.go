package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/e4c2/e4c2/suites"
)

// Key kinds of e4c2 keygen. Every kind exists for every suite that
// supports its mode (symmetric keys: standard and fips; identities and C2
// key pairs: every PK suite).
const (
	kindSymmetric = "symmetric" // topic key or SK client key
	kindIdentity  = "identity"  // PK client identity (+ .pub)
	kindC2        = "c2"        // C2 key pair (+ .pub)
	kindPassword  = "password"  // SK key or PK identity derived from a password
)

func newKeygenCmd() *cobra.Command {
	var suiteName, mode, passFile string
	var force bool
	c := &cobra.Command{
		Use:   "keygen symmetric|identity|c2|password FILE",
		Short: "generate a key file (0600) of any kind for any suite; public halves go to FILE.pub",
		Long: `Generate keys in the formats the C2 and the devices use (hex text files):

  symmetric FILE   a random symmetric key: a topic key or an SK client key
  identity FILE    a random PK client identity; the public key (what
                   e4c2 client add --public-key-file registers) goes to FILE.pub
  c2 FILE          a C2 key pair (PK); public key in FILE.pub
  password FILE    a key derived from a password read from --password-file or
                   typed on stdin (never a flag value): an SK key with
                   --mode sk, a PK identity (+ FILE.pub) with --mode pk.
                   The standard suite uses the reference's unsalted Argon2i
                   for compatibility with provisioned devices: it is weak,
                   prefer random keys.

Private files are written with mode 0600 and never overwritten without --force.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, path := args[0], args[1]
			s, err := suites.ByName(suiteName)
			if err != nil {
				return withHint(err, "suites: "+strings.Join(suites.Names(), ", "))
			}
			pkSuite := func() (suites.PKSuite, error) {
				pk, ok := s.(suites.PKSuite)
				if !ok {
					return nil, fmt.Errorf("suite %s has no PK mode", s.Name())
				}
				return pk, nil
			}
			var priv, pub []byte
			switch kind {
			case kindSymmetric:
				if priv, err = s.GenerateKey(); err != nil {
					return fmt.Errorf("keygen: %w", err)
				}
			case kindIdentity:
				pk, err := pkSuite()
				if err != nil {
					return err
				}
				id, err := pk.GenerateIdentity()
				if err != nil {
					return fmt.Errorf("keygen: %w", err)
				}
				priv, pub = id.Bytes(), id.PublicKey()
			case kindC2:
				pk, err := pkSuite()
				if err != nil {
					return err
				}
				k, err := pk.GenerateC2Key()
				if err != nil {
					return fmt.Errorf("keygen: %w", err)
				}
				priv, pub = k.Bytes(), k.PublicKey()
			case kindPassword:
				m, err := suites.ParseMode(mode)
				if err != nil {
					return err
				}
				if _, err := suites.ForMode(s.Name(), m); err != nil {
					return err
				}
				pw, err := readPassword(cmd, passFile)
				if err != nil {
					return err
				}
				seed, err := s.DeriveKey(pw)
				if err != nil {
					return fmt.Errorf("keygen: %w", err)
				}
				if m == suites.SymKey {
					priv = seed
					break
				}
				pk, err := pkSuite()
				if err != nil {
					clear(seed)
					return err
				}
				id, err := pk.IdentityFromSeed(seed)
				clear(seed)
				if err != nil {
					return fmt.Errorf("keygen: %w", err)
				}
				priv, pub = id.Bytes(), id.PublicKey()
			default:
				return withHint(fmt.Errorf("unknown key kind %q", kind), "kinds: symmetric, identity, c2, password")
			}
			defer clear(priv)
			if pub != nil && !force {
				// Check both before writing either.
				if _, err := os.Lstat(path + ".pub"); err == nil {
					return withHint(fmt.Errorf("%s.pub already exists", path), "pass --force to overwrite it")
				}
			}
			if err := writeKeyFile(path, priv, 0o600, force); err != nil {
				return err
			}
			if pub != nil {
				if err := writeKeyFile(path+".pub", pub, 0o644, force); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s key written to %s (public key in %s.pub)\n", s.Name(), kind, path, path)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s key written to %s\n", s.Name(), kind, path)
			return nil
		},
	}
	c.Flags().StringVar(&suiteName, "suite", "standard", "crypto suite: "+strings.Join(suites.Names(), ", "))
	c.Flags().StringVar(&mode, "mode", "sk", "password kind: sk (symmetric key) or pk (identity)")
	c.Flags().StringVar(&passFile, "password-file", "", "file holding the password (default: prompt on stdin)")
	c.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	return c
}

// readPassword reads a password from a file (first line) or stdin: with no
// echo on a terminal, else the first line of the input.
func readPassword(cmd *cobra.Command, file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("password file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		return strings.TrimRight(line, "\r"), nil
	}
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), "password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", withHint(errors.New("no password given"), "pass --password-file or type it on stdin")
	}
	return line, nil
}
