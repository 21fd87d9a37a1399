package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/e4c2/e4c2/benchmarks"
)

func main() {
	// This executable is also its own device farm (a child process that
	// holds the devices' connections).
	benchmarks.RunFarmIfChild()
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("e4c2-bench", flag.ContinueOnError)
	bf := benchmarks.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "e4c2-bench: error: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := bf.Options()
	o.Farm = benchmarks.SelfFarm()
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		o.Quiet = true
	}
	if _, err := benchmarks.Run(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "e4c2-bench: error: %v\n", err)
		return 1
	}
	return 0
}
