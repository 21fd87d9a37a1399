package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// guideTypos makes every command group (a command with subcommands and no
// action of its own) refuse an unknown subcommand with a non-zero exit and
// a "did you mean" hint. Cobra does this only for the root: a typo in a
// nested command (`e4c2 client lsit`) printed the group's help and exited
// 0, which a script took for success.
func guideTypos(c *cobra.Command) {
	if c.HasSubCommands() {
		c.SuggestionsMinimumDistance = 2
		if c.Run == nil && c.RunE == nil {
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) == 0 {
					return cmd.Help()
				}
				return unknownCommand(cmd, args[0])
			}
		}
	}
	for _, sub := range c.Commands() {
		guideTypos(sub)
	}
}

// unknownCommand is the one-line error for a mistyped subcommand, with the
// closest names as the hint.
func unknownCommand(cmd *cobra.Command, typed string) error {
	err := fmt.Errorf("unknown command %q for %q", typed, cmd.CommandPath())
	if s := cmd.SuggestionsFor(typed); len(s) > 0 {
		return withHint(err, "did you mean "+strings.Join(quoteAll(s), " or ")+"? ("+cmd.CommandPath()+" --help lists the commands)")
	}
	return withHint(err, cmd.CommandPath()+" --help lists the commands")
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
