package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Every flag of every command shows its default once in --help: a usage
// text that repeats "(default ...)" besides pflag's own read as two
// different defaults (bench --min-time said "(default 300ms) (default 0s)").
func TestHelpShowsEachDefaultOnce(t *testing.T) {
	root := newRootCmd(strings.NewReader(""), io.Discard, io.Discard)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, line := range strings.Split(c.LocalFlags().FlagUsages(), "\n") {
			if strings.Count(line, "(default") > 1 {
				t.Errorf("%s: %s", c.CommandPath(), strings.TrimSpace(line))
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)

	var out bytes.Buffer
	if code := run([]string{"bench", "--help"}, strings.NewReader(""), &out, io.Discard); code != 0 {
		t.Fatalf("bench --help exit %d", code)
	}
	if !strings.Contains(out.String(), "(default 300ms)") {
		t.Fatalf("bench --help lacks the --min-time default:\n%s", out.String())
	}
}
