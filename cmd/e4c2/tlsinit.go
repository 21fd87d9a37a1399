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

func newClusterCertsCmd() *cobra.Command {
	var (
		dir      string
		nodes    []string
		hosts    []string
		validity time.Duration
	)
	c := &cobra.Command{
		Use:   "cluster-certs --nodes c2-a,c2-b,c2-c [--hosts 10.0.0.11,10.0.0.12,10.0.0.13]",
		Short: "Make a CA and route certificates for the integrated cluster (serve --cluster)",
		Long: "Make a certificate authority and, for each node, a route certificate and key signed by it,\n" +
			"for the mutual TLS of serve --cluster's routes (--cluster-tls-cert <node>.crt,\n" +
			"--cluster-tls-key <node>.key, --cluster-tls-ca ca.crt). Every certificate names its node,\n" +
			"the --hosts the peers dial (as in --cluster-peers) and 127.0.0.1 and localhost, and is valid\n" +
			"for both ends of a route. Keys are ECDSA P-256, written 0600 and never overwritten. Copy to\n" +
			"each node only ca.crt and its own pair; keep ca.key offline.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cn []tlsfiles.ClusterNode
			for _, n := range nodes {
				cn = append(cn, tlsfiles.ClusterNode{Name: n})
			}
			if err := tlsfiles.ClusterCerts(dir, cn, hosts, validity, time.Now()); err != nil {
				return withHint(err, "choose an empty --out directory")
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "wrote %s (the CA every node trusts) and %s (keep it offline)\n",
				filepath.Join(dir, tlsfiles.CACertFile), filepath.Join(dir, tlsfiles.CAKeyFile))
			for _, n := range cn {
				fmt.Fprintf(out, "node %s: e4c2 serve --cluster --cluster-node-name %s --cluster-tls-cert %s --cluster-tls-key %s --cluster-tls-ca %s ...\n",
					n.Name, n.Name, filepath.Join(dir, n.CertFile()), filepath.Join(dir, n.KeyFile()), filepath.Join(dir, tlsfiles.CACertFile))
			}
			return nil
		},
	}
	c.Flags().StringVar(&dir, "out", "e4c2-cluster-tls", "directory to write ca.crt, ca.key and <node>.crt, <node>.key into")
	c.Flags().StringSliceVar(&nodes, "nodes", nil, "node names (--cluster-node-name or --instance-id of each node), comma-separated")
	c.Flags().StringSliceVar(&hosts, "hosts", nil, "host names and IP addresses the peers dial (those of --cluster-peers), put in every node's certificate")
	c.Flags().DurationVar(&validity, "validity", 365*24*time.Hour, "validity of the certificates")
	_ = c.MarkFlagRequired("nodes")
	return c
}
