package fips_test

import (
	"crypto/fips140"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// childEnv marks the re-executed test binary of TestFIPSOnlyMode.
const childEnv = "E4C2_FIPS_ONLY_CHILD"

// TestFIPSOnlyMode re-runs every other test of this package (vectors, fuzz
// seeds, suitetest conformance, check orders) in a child process of the same
// test binary with GODEBUG=fips140=only, where the Go Cryptographic Module
// refuses non-approved algorithms and parameters. The child asserts that the
// mode is really enforced, so a GODEBUG that did not take cannot pass.
func TestFIPSOnlyMode(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		if !fips140.Enforced() {
			t.Fatal("child process runs without fips140=only enforcement")
		}
		return
	}
	if fips140.Enforced() {
		// Already in fips140=only (e.g. GODEBUG=fips140=only go test): the
		// other tests of this run are the check.
		t.Log("fips140=only is enforced in this process; every test here runs in that mode")
		return
	}
	args := []string{"-test.run=.", "-test.skip=^TestDependencyGraph$", "-test.count=1", "-test.v"}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "GODEBUG=fips140=only", childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tests fail under GODEBUG=fips140=only: %v\n%s", err, out)
	}
	// The run must have exercised the suite, not matched nothing.
	for _, name := range []string{"TestFIPSOnlyMode", "TestConformance", "TestVectors", "TestPKLayoutAndCheckOrder", "TestC2KeyAndCommands", "TestDeriveKeyPasswordRules", "FuzzUnprotectSigned"} {
		if !strings.Contains(string(out), "--- PASS: "+name+" ") {
			t.Errorf("%s did not pass in the fips140=only run:\n%s", name, out)
		}
	}
}

// forbidden lists import paths (and path prefixes ending in "/") whose
// presence in the package's test graph means a non-approved implementation
// could be reached: Argon2 and the rest of x/crypto, CIRCL, every AES-SIV
// implementation (including the project's own and the suites built on it),
// X25519 and Ed25519.
var forbidden = []string{
	"golang.org/x/crypto/",
	"github.com/cloudflare/circl/",
	"github.com/tink-crypto/",
	"github.com/miscreant/",
	"github.com/secure-io/siv-go",
	"github.com/e4c2/e4c2/suites/standard",
	"github.com/e4c2/e4c2/suites/pq",
	"github.com/e4c2/e4c2/suites/internal/siv",
	"crypto/ed25519",
}

const pkgPath = "github.com/e4c2/e4c2/suites/fips"

// TestDependencyGraph fails if the import graph reaches a non-approved
// implementation. fips140=only does not notice pure-Go Argon2, CIRCL or a
// hand-made AES-SIV, so the graph itself has to be checked.
func TestDependencyGraph(t *testing.T) {
	gotool, err := goTool()
	if err != nil {
		t.Skip("the go tool is not available: cannot list the import graph")
	}
	list := func(test bool) []string {
		args := []string{"list", "-deps"}
		if test {
			args = append(args, "-test")
		}
		out, err := exec.Command(gotool, append(args, pkgPath)...).Output()
		if err != nil {
			t.Fatalf("go %s: %v", strings.Join(args, " "), err)
		}
		var pkgs []string
		for _, l := range strings.Fields(string(out)) {
			if !strings.HasPrefix(l, "[") { // "pkg [pkg.test]" variants
				pkgs = append(pkgs, l)
			}
		}
		if len(pkgs) < 10 {
			t.Fatalf("go list returned only %d packages", len(pkgs))
		}
		return pkgs
	}
	isForbidden := func(p string) bool {
		for _, f := range forbidden {
			if p == strings.TrimSuffix(f, "/") || strings.HasPrefix(p, f) || strings.HasPrefix(p, f+"/") {
				return true
			}
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == "siv" || strings.Contains(seg, "argon2") || strings.Contains(seg, "miscreant") {
				return true
			}
		}
		return false
	}
	// The package itself: the standard library and suites/core only.
	for _, p := range list(false) {
		std := !strings.Contains(strings.Split(p, "/")[0], ".")
		if !std && p != pkgPath && p != "github.com/e4c2/e4c2/suites/core" {
			t.Errorf("suites/fips imports %s: only the standard library and suites/core are allowed", p)
		}
		if isForbidden(p) {
			t.Errorf("suites/fips reaches forbidden package %s", p)
		}
	}
	// Its tests (suitetest included) must not bring one in either.
	for _, p := range list(true) {
		if isForbidden(p) {
			t.Errorf("the tests of suites/fips reach forbidden package %s", p)
		}
	}
}

// goTool finds the go command: on PATH (go test puts its own GOROOT/bin
// first on the PATH of the test binary), else in $GOROOT/bin.
func goTool() (string, error) {
	p, err := exec.LookPath("go")
	if err == nil {
		return p, nil
	}
	if root := os.Getenv("GOROOT"); root != "" {
		p = filepath.Join(root, "bin", "go")
		if _, serr := os.Stat(p); serr == nil {
			return p, nil
		}
	}
	return "", err
}
