package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/e4c2/e4c2/internal/tlsfiles"
)

func newTLSCmd() *cobra.Command {
	c := &cobra.Command{Use: "tls", Short: "TLS certificates for the API and the embedded broker"}
	var (
		dir      string
		hosts    []string
		validity time.Duration
	)
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Make a local CA and a server certificate for a test deployment",
		Long: "Make a local certificate authority and a server certificate signed by it, for the\n" +
			"API (--tls-cert-file/--tls-key-file) and the embedded broker (--mqtt-tls-cert-file/\n" +
			"--mqtt-tls-key-file). Clients trust ca.crt. Keys are written 0600 and never\n" +
			"overwritten. For production, use your organisation's PKI.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := tlsfiles.Init(dir, hosts, validity, time.Now()); err != nil {
				return withHint(err, "choose an empty --dir")
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "wrote %s (trust it in clients) and %s, %s\n",
				filepath.Join(dir, tlsfiles.CACertFile), filepath.Join(dir, tlsfiles.ServerCertFile), filepath.Join(dir, tlsfiles.ServerKeyFile))
			fmt.Fprintf(out, "serve with: e4c2 serve --tls-cert-file %s --tls-key-file %s --mqtt-tls-cert-file %s --mqtt-tls-key-file %s\n",
				filepath.Join(dir, tlsfiles.ServerCertFile), filepath.Join(dir, tlsfiles.ServerKeyFile),
				filepath.Join(dir, tlsfiles.ServerCertFile), filepath.Join(dir, tlsfiles.ServerKeyFile))
			return nil
		},
	}
	initCmd.Flags().StringVar(&dir, "dir", "e4c2-tls", "directory to write ca.crt, ca.key, server.crt, server.key into")
	initCmd.Flags().StringSliceVar(&hosts, "hosts", []string{"127.0.0.1", "localhost"}, "host names and IP addresses the server certificate is valid for")
	initCmd.Flags().DurationVar(&validity, "validity", 365*24*time.Hour, "validity of the certificates")
	c.AddCommand(initCmd)
	return c
}
