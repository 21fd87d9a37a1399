package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEWalkthroughs ties the README's walkthroughs to the scripts that
// run them: every e4c2 command line of each walkthrough block must appear,
// in order, as an exec line of its script (whitespace aside). e4c2 serve
// is startserver there. So a README edit that the scripts do not follow,
// or a command that stops working, fails the tests.
func TestREADMEWalkthroughs(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for heading, script := range map[string]string{
		"## Five-minute walkthrough": "readme_sk.txtar",
		"### PK walkthrough":         "readme_pk.txtar",
	} {
		block := firstShellBlock(t, string(readme), heading)
		want := readmeCommands(block)
		if len(want) < 5 {
			t.Fatalf("%s: only %d commands found in the README block", heading, len(want))
		}
		b, err := os.ReadFile(filepath.Join("testdata", "script", script))
		if err != nil {
			t.Fatal(err)
		}
		got := scriptCommands(string(b))
		i := 0
		for _, g := range got {
			if i < len(want) && g == want[i] {
				i++
			}
		}
		if i < len(want) {
			t.Errorf("%s: README command %q is not in %s (in order)", heading, want[i], script)
		}
	}
}

// firstShellBlock returns the first ```sh block after heading.
func firstShellBlock(t *testing.T, doc, heading string) string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README has no %q section", heading)
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	if !ok {
		t.Fatalf("%s: no ```sh block", heading)
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("%s: unterminated block", heading)
	}
	return block
}

var (
	spaces     = regexp.MustCompile(`\s+`)
	comment    = regexp.MustCompile(`\s+#.*$`)
	background = regexp.MustCompile(`\s*&(\w+&)?$`)
)

// readmeCommands returns the e4c2 command lines of a README block without
// comments and background markers, e4c2 serve excepted.
func readmeCommands(block string) []string {
	var out []string
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimSpace(comment.ReplaceAllString(line, ""))
		if !strings.HasPrefix(line, "e4c2 ") || strings.HasPrefix(line, "e4c2 serve") {
			continue
		}
		out = append(out, normalizeCommand(line))
	}
	return out
}

// scriptCommands returns the commands of a script's exec lines.
func scriptCommands(script string) []string {
	var out []string
	for _, line := range strings.Split(script, "\n") {
		if strings.HasPrefix(line, "-- ") {
			break // the archive's files
		}
		line = strings.TrimSpace(line)
		if c, ok := strings.CutPrefix(line, "exec "); ok {
			out = append(out, normalizeCommand(c))
		}
	}
	return out
}

func normalizeCommand(s string) string {
	s = background.ReplaceAllString(strings.TrimSpace(s), "")
	return spaces.ReplaceAllString(s, " ")
}
