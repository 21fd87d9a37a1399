// Command e4c2 is the E4 command-and-control server and its operator CLI.
//
// `e4c2 serve` runs the server; every other subcommand is a client of its
// HTTP API or works offline on a store (replay, audit, verify, export,
// import). main stays thin: it builds the command tree and maps errors to
// one line on stderr and an exit status.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/e4c2/e4c2/internal/buildinfo"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// exitError carries an exit status and an optional hint.
type exitError struct {
	err  error
	hint string
	code int
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withHint attaches a hint printed under the error line.
func withHint(err error, hint string) error { return &exitError{err: err, hint: hint, code: 1} }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "e4c2: error: %s\n", safeText(err.Error(), true))
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.hint != "" {
			fmt.Fprintf(stderr, "e4c2: hint: %s\n", ee.hint)
		}
		return ee.code
	}
	return 1
}

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "e4c2",
		Short:         "E4 key-management server (C2) and operator CLI",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildinfo.Read().String(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	for _, add := range subcommands {
		root.AddCommand(add())
	}
	guideTypos(root)
	return root
}

// subcommands lists the constructors of the top-level commands; each file
// of this package adds its own in an init-free way by appending here from
// a package-level var declaration.
var subcommands = []func() *cobra.Command{
	newServeCmd,
	newMasterKeyCmd,
	newClientCmd, newTopicCmd, newAttachCmd, newDetachCmd, newPubKeyCmd, newC2KeyCmd,
	newTokenCmd, newEventsCmd, newAuditCmd, newPendingCmd, newStatusCmd, newResyncCmd, newReleaseCmd, newProtectCmd, newUnprotectCmd,
	newExportKeyCmd, newKeygenCmd, newDeviceCmd, newReplayCmd, newVerifyCmd, newExportCmd, newImportCmd,
	newBackupCmd, newRestoreCmd,
	newBenchCmd,
	newRuleCmd,
	newFindingsCmd, newMonitorCmd,
	newVersionCmd,
	newTLSCmd, newClusterCertsCmd,
	newBrokerConfigCmd,
}
