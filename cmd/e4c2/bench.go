package main

import (
	"flag"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/e4c2/e4c2/benchmarks"
)

// newBenchCmd is `e4c2 bench`: the benchmark runner of package benchmarks
// (the same as `go run ./benchmarks/cmd/e4c2-bench`). The e4c2 binary is
// also the runner's device farm: the runner starts `e4c2 bench` again with
// benchmarks.FarmEnv set, and this command then serves devices instead.
func newBenchCmd() *cobra.Command {
	gofs := flag.NewFlagSet("bench", flag.ContinueOnError)
	bf := benchmarks.BindFlags(gofs)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmark the suites, the store and the C2 end to end (table, JSON, SVG charts)",
		Long: `Benchmark every crypto suite and mode (protect, unprotect, sign/verify, command
key agreement, password derivation, overhead), the event store (durable appends,
replay) and the C2 end to end (topic rotation until every connected device holds
the new key, through the embedded broker and mosquitto). Each group reports a
same-run baseline and the ratio to it.

  e4c2 bench --out results.json --charts charts
  e4c2 bench --groups fanout --devices 1000,10000
  e4c2 bench --compare old.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			benchmarks.RunFarmIfChild()
			o := bf.Options()
			o.Farm = benchmarks.SelfFarm("bench")
			o.Stdout, o.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			if f, ok := o.Stderr.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
				o.Quiet = true
			}
			_, err := benchmarks.Run(cmd.Context(), o)
			return err
		},
	}
	cmd.Flags().AddGoFlagSet(gofs)
	return cmd
}
