// Command cyclo is the cyclomatic-complexity check of CI: it reports every
// function of the Go files under the given directories whose complexity
// is over a limit (25 by default), unless the function is listed, with a
// reason, in an exceptions file. It exits 1 if any function is over the
// limit without an exception.
//
// The count is gocyclo's (github.com/fzipp/gocyclo), which is not
// installed in CI: 1 for the function, plus 1 for each if, for, range,
// non-default case of a switch or type switch, non-default clause of a
// select, && and ||. Function literals count towards the function they
// are written in. Test files, testdata, vendor and third_party are not
// checked (table-driven tests branch by design), nor generated files.
//
// Usage:
//
//	go run ./internal/tools/cyclo [-over 25] [-exceptions .ci/cyclo-exceptions.txt] [-all] [dir ...]
//
// The exceptions file has one function a line: its file (slash-separated,
// relative to the current directory), its name as cyclo prints it
// (Func, T.Method or (*T).Method) and the reason, which is required.
// Blank lines and lines starting with # are ignored. An exception whose
// function is gone or back under the limit is reported as stale (not an
// error: another change may have fixed it; remove the line then).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	over := flag.Int("over", 25, "report functions whose complexity is over this")
	excPath := flag.String("exceptions", "", "file of allowed functions, one a line: file name reason")
	all := flag.Bool("all", false, "list every function over the limit, exceptions included")
	flag.Parse()
	dirs := flag.Args()
	if len(dirs) == 0 {
		dirs = []string{"."}
	}
	code, err := run(os.Stdout, dirs, *over, *excPath, *all)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cyclo:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

// Stat is the complexity of one function.
type Stat struct {
	File       string // slash-separated path as walked
	Line       int
	Func       string // Func, T.Method or (*T).Method
	Complexity int
}

func (s Stat) key() string { return s.File + " " + s.Func }

func run(w io.Writer, dirs []string, over int, excPath string, all bool) (int, error) {
	exc := map[string]string{}
	if excPath != "" {
		var err error
		if exc, err = readExceptions(excPath); err != nil {
			return 0, err
		}
	}
	var stats []Stat
	for _, d := range dirs {
		s, err := analyzeDir(d)
		if err != nil {
			return 0, err
		}
		stats = append(stats, s...)
	}
	sort.Slice(stats, func(i, j int) bool { return stats[i].Complexity > stats[j].Complexity })
	code := 0
	seen := map[string]bool{}
	for _, s := range stats {
		if s.Complexity <= over {
			continue
		}
		seen[s.key()] = true
		if _, ok := exc[s.key()]; ok {
			if all {
				fmt.Fprintf(w, "%d %s %s:%d (exception)\n", s.Complexity, s.Func, s.File, s.Line)
			}
			continue
		}
		fmt.Fprintf(w, "%d %s %s:%d: cyclomatic complexity over %d (simplify it, or list it with a reason in the exceptions file)\n",
			s.Complexity, s.Func, s.File, s.Line, over)
		code = 1
	}
	var stale []string
	for k := range exc {
		if !seen[k] {
			stale = append(stale, k)
		}
	}
	sort.Strings(stale)
	for _, k := range stale {
		fmt.Fprintf(w, "cyclo: note: stale exception %q (gone or not over %d any more): remove it\n", k, over)
	}
	return code, nil
}

// readExceptions reads "file func reason..." lines into file+" "+func -> reason.
func readExceptions(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("exceptions: %w", err)
	}
	defer f.Close()
	exc := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 3 {
			return nil, fmt.Errorf("%s:%d: want \"file function reason\", the reason is required", path, n)
		}
		exc[fields[0]+" "+fields[1]] = strings.Join(fields[2:], " ")
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("exceptions: %w", err)
	}
	return exc, nil
}

// skipDir reports directories the check does not enter.
func skipDir(name string) bool {
	switch name {
	case "vendor", "third_party", "testdata", "node_modules":
		return true
	}
	return len(name) > 1 && (name[0] == '.' || name[0] == '_')
}

func analyzeDir(root string) ([]Stat, error) {
	var stats []Stat
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		s, err := analyzeFile(path)
		if err != nil {
			return err
		}
		stats = append(stats, s...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", root, err)
	}
	return stats, nil
}

func analyzeFile(path string) ([]Stat, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if ast.IsGenerated(f) {
		return nil, nil
	}
	var stats []Stat
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		stats = append(stats, Stat{
			File:       filepath.ToSlash(path),
			Line:       fset.Position(fn.Pos()).Line,
			Func:       funcName(fn),
			Complexity: Complexity(fn),
		})
	}
	return stats, nil
}

// funcName is gocyclo's name of a function: Func, T.Method or (*T).Method
// (type parameters left out).
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	return recvName(fn.Recv.List[0].Type) + "." + fn.Name.Name
}

func recvName(t ast.Expr) string {
	switch t := t.(type) {
	case *ast.StarExpr:
		return "(*" + recvName(t.X) + ")"
	case *ast.IndexExpr:
		return recvName(t.X)
	case *ast.IndexListExpr:
		return recvName(t.X)
	case *ast.Ident:
		return t.Name
	case *ast.ParenExpr:
		return recvName(t.X)
	}
	return "?"
}

// Complexity returns the cyclomatic complexity of n (a function) as
// gocyclo counts it.
func Complexity(n ast.Node) int {
	c := 1
	ast.Inspect(n, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.IfStmt, *ast.ForStmt, *ast.RangeStmt:
			c++
		case *ast.CaseClause:
			if n.List != nil { // not default
				c++
			}
		case *ast.CommClause:
			if n.Comm != nil { // not default
				c++
			}
		case *ast.BinaryExpr:
			if n.Op == token.LAND || n.Op == token.LOR {
				c++
			}
		}
		return true
	})
	return c
}
