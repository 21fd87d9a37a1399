package doccheck

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/e4c2/e4c2/suites"
	"github.com/e4c2/e4c2/suites/core"
)

// privateRefs are strings no file of the repository may contain: they point
// at the team's private reference directory, which a clone does not have.
// They are built by concatenation so that this file does not contain them.
var privateRefs = []string{
	".." + "/shared",
	"/work" + "/shared",
}

// When these tests were written they failed on purpose: the README and
// several comments still pointed at the private reference, and the list in
// the failure message is the work left to the maintainer (docs/PROTOCOL.md
// gives every reference a section number to point at instead).

func TestRelativeLinks(t *testing.T) {
	repo := openRepo(t)
	var problems []string
	checked := 0
	for _, f := range repo.files {
		if !strings.EqualFold(path.Ext(f), ".md") || skipped(f) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(repo.root, filepath.FromSlash(f)))
		if err != nil {
			t.Logf("%s: %v (listed but unreadable; skipped)", f, err)
			continue
		}
		for _, l := range extractLinks(string(data)) {
			checked++
			if p := repo.checkLink(f, l.target); p != "" {
				problems = append(problems, fmt.Sprintf("%s:%d: (%s) %s", f, l.line, l.target, p))
			}
		}
	}
	t.Logf("%d links and images checked in the Markdown files (external ones are not fetched; file list from %s)", checked, repo.source)
	if len(problems) > 0 {
		sort.Strings(problems)
		t.Errorf("%d Markdown link(s) do not resolve inside the repository "+
			"(a clone has nothing outside it; point at a file of the repository, e.g. docs/PROTOCOL.md):\n\t%s",
			len(problems), strings.Join(problems, "\n\t"))
	}
}

func TestNoPrivateReferencePaths(t *testing.T) {
	repo := openRepo(t)
	var problems []string
	for _, f := range repo.files {
		data, err := os.ReadFile(filepath.Join(repo.root, filepath.FromSlash(f)))
		if err != nil || isBinary(data) {
			continue
		}
		for i, line := range strings.Split(string(data), "\n") {
			for _, ref := range privateRefs {
				if strings.Contains(line, ref) {
					problems = append(problems, fmt.Sprintf("%s:%d: %q: %s", f, i+1, ref, strings.TrimSpace(line)))
				}
			}
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		t.Errorf("%d line(s) point at the private reference directory, which a clone of the repository "+
			"does not have (cite docs/PROTOCOL.md section N instead, or ship the file in the repository):\n\t%s",
			len(problems), strings.Join(problems, "\n\t"))
	}
}

// repo is the file list of the repository.
type repo struct {
	root   string
	source string              // where the list came from, for the log
	files  []string            // slash-separated, relative to root
	set    map[string]bool     // files
	dirs   map[string]bool     // every directory holding a listed file
	slugs  map[string][]string // anchors of a Markdown file, computed lazily
}

func openRepo(t *testing.T) *repo {
	t.Helper()
	root := moduleRoot(t)
	r := &repo{root: root, set: map[string]bool{}, dirs: map[string]bool{".": true}, slugs: map[string][]string{}}
	if files, ok := gitFiles(root); ok {
		r.files, r.source = files, "git ls-files (tracked and not ignored)"
	} else {
		r.files, r.source = walkFiles(t, root), "a walk of the module root"
	}
	for _, f := range r.files {
		r.set[f] = true
		for d := path.Dir(f); d != "."; d = path.Dir(d) {
			r.dirs[d] = true
		}
	}
	if len(r.files) == 0 {
		t.Fatalf("no files found under %s", root)
	}
	return r
}

// moduleRoot goes up from the working directory (the package directory
// under go test) to the directory holding go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
}

// gitFiles lists the files git tracks, plus the new files not ignored (a
// file about to be committed is checked too). ok is false without git or
// outside a work tree.
func gitFiles(root string) (files []string, ok bool) {
	if _, err := exec.LookPath("git"); err != nil {
		return nil, false
	}
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil || len(out) == 0 {
		return nil, false
	}
	seen := map[string]bool{}
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if f == "" || seen[f] || hasComponent(f, ".git") {
			continue
		}
		if _, err := os.Lstat(filepath.Join(root, filepath.FromSlash(f))); err != nil {
			continue // deleted in the work tree, not yet in the index
		}
		seen[f] = true
		files = append(files, f)
	}
	sort.Strings(files)
	return files, true
}

// walkFiles lists every regular file under root but .git and testdata.
func walkFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() && d.Name() != ".git" {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

func hasComponent(p, name string) bool {
	for _, c := range strings.Split(p, "/") {
		if c == name {
			return true
		}
	}
	return false
}

// skipped reports whether a Markdown file is test data, not documentation.
func skipped(f string) bool { return hasComponent(f, "testdata") }

func isBinary(data []byte) bool {
	if len(data) > 8000 {
		data = data[:8000]
	}
	return bytes.IndexByte(data, 0) >= 0
}

var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)

// checkLink returns why target, found in file from, does not resolve, or
// "" when it does (or is external).
func (r *repo) checkLink(from, target string) string {
	target = strings.TrimSpace(target)
	if strings.HasPrefix(target, "<") && strings.HasSuffix(target, ">") {
		target = strings.TrimSpace(target[1 : len(target)-1])
	}
	if target == "" || schemeRE.MatchString(target) || strings.HasPrefix(target, "//") {
		return "" // empty, or external: http:, https:, mailto:, ...
	}
	p, frag, _ := strings.Cut(target, "#")
	p, _, _ = strings.Cut(p, "?")
	up, err := url.PathUnescape(p)
	if err != nil {
		return "malformed escape in the path"
	}
	var dest string
	switch {
	case up == "":
		dest = from // "#anchor" in the same file
	case strings.HasPrefix(up, "/"):
		dest = path.Clean(strings.TrimLeft(up, "/")) // repository-root relative, as GitHub reads it
	default:
		dest = path.Join(path.Dir(from), up)
	}
	if dest == ".." || strings.HasPrefix(dest, "../") {
		return "points outside the repository (to " + dest + ")"
	}
	if !r.exists(dest) {
		return "no such file or directory in the repository: " + dest
	}
	if frag == "" || !strings.EqualFold(path.Ext(dest), ".md") || !r.set[dest] {
		return ""
	}
	anchor, err := url.PathUnescape(frag)
	if err != nil {
		return "malformed escape in the anchor"
	}
	for _, a := range r.anchors(dest) {
		if a == anchor || a == strings.ToLower(anchor) {
			return ""
		}
	}
	return "no heading or anchor #" + frag + " in " + dest
}

func (r *repo) exists(p string) bool {
	if p == "." || r.set[p] || r.dirs[p] {
		return true
	}
	return false
}

func (r *repo) anchors(f string) []string {
	if a, ok := r.slugs[f]; ok {
		return a
	}
	data, err := os.ReadFile(filepath.Join(r.root, filepath.FromSlash(f)))
	if err != nil {
		r.slugs[f] = nil
		return nil
	}
	a := extractAnchors(string(data))
	r.slugs[f] = a
	return a
}

// link is one link target and the line it starts on.
type link struct {
	target string
	line   int
}

var (
	fenceRE = regexp.MustCompile("^ {0,3}(`{3,}|~{3,})")
	// [text](target "title") and ![alt](target); the text may hold one
	// level of brackets (e.g. an image inside a link).
	inlineRE = regexp.MustCompile(`(!?)\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*(<[^<>\n]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)(?:\s+(?:"[^"]*"|'[^']*'|\([^()]*\)))?\s*\)`)
	// [label]: target
	refDefRE = regexp.MustCompile(`(?m)^ {0,3}\[[^\]\n]+\]:[ \t]*(<[^<>\n]*>|\S+)`)
	// <a href="..."> and <img src="...">
	htmlRE = regexp.MustCompile(`(?i)<(?:a|img|source|link)\b[^>]*?\s(?:href|src)\s*=\s*(?:"([^"]*)"|'([^']*)')`)
)

// stripCode blanks fenced code blocks and inline code spans, keeping line
// breaks so that offsets still give line numbers.
func stripCode(s string) string {
	lines := strings.Split(s, "\n")
	fence := ""
	for i, l := range lines {
		if fence != "" {
			if m := fenceRE.FindStringSubmatch(l); m != nil && m[1][0] == fence[0] && len(m[1]) >= len(fence) &&
				strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(l), m[1][:1])) == "" {
				fence = ""
			}
			lines[i] = ""
			continue
		}
		if m := fenceRE.FindStringSubmatch(l); m != nil {
			fence = m[1]
			lines[i] = ""
			continue
		}
		lines[i] = stripCodeSpans(l)
	}
	return strings.Join(lines, "\n")
}

// stripCodeSpans blanks `code` spans of one line (a run of n backticks up
// to the next run of exactly n).
func stripCodeSpans(l string) string {
	b := []byte(l)
	for i := 0; i < len(b); {
		if b[i] != '`' {
			i++
			continue
		}
		n := 0
		for i+n < len(b) && b[i+n] == '`' {
			n++
		}
		end := -1
		for j := i + n; j < len(b); {
			if b[j] != '`' {
				j++
				continue
			}
			m := 0
			for j+m < len(b) && b[j+m] == '`' {
				m++
			}
			if m == n {
				end = j
				break
			}
			j += m
		}
		if end < 0 {
			i += n
			continue
		}
		for k := i; k < end+n; k++ {
			b[k] = ' '
		}
		i = end + n
	}
	return string(b)
}

// extractLinks returns the link and image targets of a Markdown text.
func extractLinks(s string) []link {
	s = stripCode(s)
	lineAt := func(off int) int { return strings.Count(s[:off], "\n") + 1 }
	var out []link
	var inline func(text string, base int)
	inline = func(text string, base int) {
		for _, m := range inlineRE.FindAllStringSubmatchIndex(text, -1) {
			out = append(out, link{target: text[m[6]:m[7]], line: lineAt(base + m[6])})
			inline(text[m[4]:m[5]], base+m[4]) // an image inside the link text
		}
	}
	inline(s, 0)
	for _, m := range refDefRE.FindAllStringSubmatchIndex(s, -1) {
		out = append(out, link{target: s[m[2]:m[3]], line: lineAt(m[2])})
	}
	for _, m := range htmlRE.FindAllStringSubmatchIndex(s, -1) {
		g := 2
		if m[2] < 0 {
			g = 4
		}
		out = append(out, link{target: s[m[g]:m[g+1]], line: lineAt(m[g])})
	}
	return out
}

var (
	atxRE     = regexp.MustCompile(`^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$`)
	setextRE  = regexp.MustCompile(`^ {0,3}(?:=+|-+)[ \t]*$`)
	idAttrRE  = regexp.MustCompile(`(?i)<[a-z][^>]*?\s(?:id|name)\s*=\s*(?:"([^"]*)"|'([^']*)')`)
	mdLinkRE  = regexp.MustCompile(`!?\[([^\[\]]*)\]\([^()]*\)`)
	htmlTagRE = regexp.MustCompile(`<[^>]+>`)
)

// extractAnchors returns the anchors a Markdown file defines: the GitHub
// slug of every heading (with -1, -2, ... for repeats) and every explicit
// id or name attribute.
func extractAnchors(s string) []string {
	var out []string
	count := map[string]int{}
	add := func(text string) {
		slug := slugify(text)
		if n := count[slug]; n > 0 {
			out = append(out, fmt.Sprintf("%s-%d", slug, n))
		} else {
			out = append(out, slug)
		}
		count[slug]++
	}
	text := stripFencesOnly(s)
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if m := atxRE.FindStringSubmatch(l); m != nil {
			add(m[1])
			continue
		}
		if i > 0 && setextRE.MatchString(l) && strings.TrimSpace(lines[i-1]) != "" &&
			atxRE.FindStringSubmatch(lines[i-1]) == nil && !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "|") {
			add(lines[i-1])
		}
	}
	for _, m := range idAttrRE.FindAllStringSubmatch(text, -1) {
		if m[1] != "" {
			out = append(out, m[1])
		} else if m[2] != "" {
			out = append(out, m[2])
		}
	}
	return out
}

// stripFencesOnly blanks fenced code blocks but keeps code spans (heading
// text keeps the words inside backticks).
func stripFencesOnly(s string) string {
	lines := strings.Split(s, "\n")
	fence := ""
	for i, l := range lines {
		m := fenceRE.FindStringSubmatch(l)
		switch {
		case fence != "":
			if m != nil && m[1][0] == fence[0] && len(m[1]) >= len(fence) {
				fence = ""
			}
			lines[i] = ""
		case m != nil:
			fence = m[1]
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n")
}

// slugify is GitHub's heading anchor: the rendered text in lower case,
// without characters other than letters, marks, digits, "_", "-" and
// spaces, with each space turned into "-".
func slugify(heading string) string {
	text := mdLinkRE.ReplaceAllString(heading, "$1")
	text = htmlTagRE.ReplaceAllString(text, "")
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(text)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// The checker itself, on fixed inputs.

func TestExtractLinks(t *testing.T) {
	md := "# Title\n" +
		"See [a](docs/A.md), ![img](x/y.svg \"t\") and [b](<with space.md>).\n" +
		"[![badge](badge.svg)](https://example.com)\n" +
		"A `[not](a-link.md)` span, and [wrapped\ntext](wrapped.md#sec).\n" +
		"```\n[in](fence.md)\n```\n" +
		"[ref]: ref/target.md\n" +
		"<img src=\"html.png\"> <a href='h.md'>h</a>\n"
	var got []string
	for _, l := range extractLinks(md) {
		got = append(got, fmt.Sprintf("%d:%s", l.line, l.target))
	}
	want := []string{"2:docs/A.md", "2:x/y.svg", "2:<with space.md>", "3:https://example.com", "3:badge.svg",
		"5:wrapped.md#sec", "9:ref/target.md", "10:html.png", "10:h.md"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("extractLinks:\n got %q\nwant %q", got, want)
	}
}

func TestAnchorsAndResolution(t *testing.T) {
	md := "# E4 protocol\n## 6. Key transition (topic key rotation)\n## Notes\n## Notes\n" +
		"<a id=\"section-6\"></a>\n### `SetPubKey` [order](x.md)\nSetext\n---\n```\n# not a heading\n```\n"
	got := strings.Join(extractAnchors(md), " ")
	want := "e4-protocol 6-key-transition-topic-key-rotation notes notes-1 setpubkey-order setext section-6"
	if got != want {
		t.Errorf("extractAnchors:\n got %q\nwant %q", got, want)
	}
	r := &repo{set: map[string]bool{"README.md": true, "docs/PROTOCOL.md": true, "docs/README.md": true},
		dirs:  map[string]bool{".": true, "docs": true},
		slugs: map[string][]string{"docs/PROTOCOL.md": {"1-identifiers", "section-1"}, "docs/README.md": {"docs"}}}
	for _, c := range []struct {
		from, target string
		ok           bool
	}{
		{"README.md", "docs/PROTOCOL.md", true},
		{"README.md", "docs/PROTOCOL.md#section-1", true},
		{"README.md", "docs/PROTOCOL.md#1-identifiers", true},
		{"README.md", "docs/PROTOCOL.md#9-nothing", false},
		{"docs/README.md", "PROTOCOL.md", true},
		{"docs/README.md", "../README.md", true},
		{"docs/README.md", "./", true},
		{"docs/README.md", "#docs", true},
		{"docs/README.md", "#nope", false},
		{"README.md", ".." + "/shared/E4-PROTOCOL.md", false},
		{"README.md", "missing.md", false},
		{"README.md", "/docs/PROTOCOL.md", true},
		{"README.md", "https://example.com/x.md", true},
		{"README.md", "mailto:someone@example.com", true},
	} {
		if why := r.checkLink(c.from, c.target); (why == "") != c.ok {
			t.Errorf("checkLink(%q, %q) = %q, want ok=%v", c.from, c.target, why, c.ok)
		}
	}
}

// TestProtocolLengths checks the length tables of docs/PROTOCOL.md against
// the suites: the "Exact lengths" table of section 5 (plain / protected
// length of every command, per suite and mode) and the overhead rows of
// section 8.
func TestProtocolLengths(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(moduleRoot(t), "docs", "PROTOCOL.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	bySuite := map[string]core.Suite{}
	for _, s := range suites.All() {
		bySuite[s.Name()] = s
	}
	codes := map[string]core.CommandCode{}
	for c := core.CommandCode(0); c.Known(); c++ {
		codes[c.String()] = c
	}

	rows := tableAfter(t, doc, "### Exact lengths")
	if len(rows) < 2 {
		t.Fatal("no table under \"### Exact lengths\"")
	}
	type col struct {
		suite core.Suite
		mode  core.Mode
	}
	var cols []col
	for _, h := range rows[0][1:] {
		name, mode, _ := strings.Cut(h, " ")
		m, err := core.ParseMode(mode)
		if bySuite[name] == nil || err != nil {
			t.Fatalf("column %q is not \"<suite> <mode>\"", h)
		}
		cols = append(cols, col{bySuite[name], m})
	}
	seen := 0
	for _, r := range rows[1:] {
		for i, cell := range r[1:] {
			if i >= len(cols) {
				break
			}
			s, m := cols[i].suite, cols[i].mode
			z := s.Sizes()
			overhead := z.SKOverhead
			if m == core.PubKey {
				overhead = z.CommandOverhead
			}
			if r[0] == "command overhead" {
				if got := firstInts(cell, 1); len(got) != 1 || got[0] != overhead {
					t.Errorf("%s %s command overhead: table says %q, suite says %d", s.Name(), m, cell, overhead)
				}
				continue
			}
			code, ok := codes[r[0]]
			if !ok {
				t.Fatalf("row %q is not a command", r[0])
			}
			seen++
			plain, err := sampleCommand(code, z, m).Encode(z, m)
			if err != nil {
				if !strings.HasPrefix(cell, "—") {
					t.Errorf("%s %s %s: table says %q, but the command does not exist there (%v)", s.Name(), m, code, cell, err)
				}
				continue
			}
			want := []int{len(plain), len(plain) + overhead}
			if got := firstInts(cell, 2); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s %s %s: table says %q, want %d / %d", s.Name(), m, code, cell, want[0], want[1])
			}
		}
	}
	if seen != 8*len(cols) {
		t.Errorf("checked %d command cells, want %d (8 commands x %d columns)", seen, 8*len(cols), len(cols))
	}

	// Section 8, overheads: columns standard, fips, pq.
	rows = tableAfter(t, doc, "<a id=\"section-8\"></a>")
	names := []string{"standard", "fips", "pq"}
	checks := map[string]func(core.Sizes) int{
		"SK overhead":          func(z core.Sizes) int { return z.SKOverhead },
		"PK message overhead":  func(z core.Sizes) int { return z.PKOverhead },
		"command overhead, PK": func(z core.Sizes) int { return z.CommandOverhead },
	}
	found := 0
	for _, r := range rows {
		f, ok := checks[r[0]]
		if !ok || len(r) != 4 {
			continue
		}
		found++
		for i, name := range names {
			if got, want := firstInts(r[i+1], 1), f(bySuite[name].Sizes()); len(got) != 1 || got[0] != want {
				t.Errorf("section 8, %s, %s: table says %q, suite says %d", r[0], name, r[i+1], want)
			}
		}
	}
	if found != len(checks) {
		t.Errorf("section 8: found %d of the %d overhead rows", found, len(checks))
	}
}

// tableAfter returns the cells of the first Markdown table after the line
// marker, one slice per row, the separator row left out.
func tableAfter(t *testing.T, doc, marker string) [][]string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, marker)
	if !ok {
		t.Fatalf("docs/PROTOCOL.md has no %q", marker)
	}
	var rows [][]string
	for _, l := range strings.Split(rest, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "|") {
			if len(rows) > 0 {
				break
			}
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(l, "|"), "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		if strings.Trim(strings.Join(cells, ""), "-: ") == "" {
			continue // the separator row
		}
		rows = append(rows, cells)
	}
	return rows
}

var intRE = regexp.MustCompile(`\d[\d,]*`)

// firstInts returns the first n integers of a table cell (commas allowed).
func firstInts(cell string, n int) []int {
	var out []int
	for _, m := range intRE.FindAllString(cell, n) {
		v, err := strconv.Atoi(strings.ReplaceAll(m, ",", ""))
		if err != nil {
			return nil
		}
		out = append(out, v)
	}
	return out
}

// sampleCommand returns a command of code with zero-filled arguments of
// the suite's sizes.
func sampleCommand(code core.CommandCode, z core.Sizes, m core.Mode) core.Command {
	c := core.Command{Code: code}
	switch code {
	case core.CmdRemoveTopic:
		c.TopicHash = make([]byte, core.IDLen)
	case core.CmdSetIDKey:
		c.Key = make([]byte, z.Key)
		if m == core.PubKey {
			c.Key = make([]byte, z.IdentityKey)
		}
	case core.CmdSetTopicKey:
		c.Key, c.TopicHash = make([]byte, z.Key), make([]byte, core.IDLen)
	case core.CmdRemovePubKey:
		c.ID = make([]byte, core.IDLen)
	case core.CmdSetPubKey:
		c.Key, c.ID = make([]byte, z.SigningPublic), make([]byte, core.IDLen)
	case core.CmdSetC2Key:
		c.Key = make([]byte, z.C2PublicKey)
	}
	return c
}
