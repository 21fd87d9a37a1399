package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `package p

func straight() {}

func branches(a, b bool, xs []int, ch chan int) int {
	if a && b || !a { // if, &&, ||
		return 1
	}
	for i := 0; i < 3; i++ { // for
	}
	for range xs { // range
	}
	switch { // two cases, default free
	case a:
	case b:
	default:
	}
	select { // one comm clause, default free
	case <-ch:
	default:
	}
	f := func() {
		if a { // a literal counts towards its function
		}
	}
	f()
	return 0
}

type T[E any] struct{}

func (*T[E]) M() { if true {} }
func (T[E]) V()  {}
`

func TestComplexity(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", sample, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"straight": 1, "branches": 10, "(*T).M": 2, "T.V": 1}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok {
			continue
		}
		name := funcName(fn)
		if got := Complexity(fn); got != want[name] {
			t.Errorf("%s: complexity %d, want %d", name, got, want[name])
		}
		delete(want, name)
	}
	if len(want) != 0 {
		t.Errorf("functions not seen: %v", want)
	}
}

func TestRunExceptions(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	src := write("p.go", sample)
	write("p_test.go", strings.Replace(sample, "branches", "testOnly", 1))
	file := filepath.ToSlash(src)

	var out bytes.Buffer
	code, err := run(&out, []string{dir}, 5, "", false)
	if err != nil || code != 1 || !strings.Contains(out.String(), "10 branches "+file) {
		t.Fatalf("no exceptions: code %d, %v\n%s", code, err, out.String())
	}
	if strings.Contains(out.String(), "testOnly") {
		t.Fatal("a _test.go file was checked")
	}

	exc := write("exc.txt", "# comment\n\n"+file+" branches a switch over every case\n"+file+" gone it was split\n")
	out.Reset()
	code, err = run(&out, []string{dir}, 5, exc, false)
	if err != nil || code != 0 {
		t.Fatalf("with exception: code %d, %v\n%s", code, err, out.String())
	}
	if !strings.Contains(out.String(), "stale exception") || !strings.Contains(out.String(), "gone") {
		t.Fatalf("stale exception not reported:\n%s", out.String())
	}

	bad := write("bad.txt", file+" branches\n")
	if _, err := run(&out, []string{dir}, 5, bad, false); err == nil {
		t.Fatal("an exception without a reason was accepted")
	}
}
