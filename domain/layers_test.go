package domain_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/e4c2/e4c2"

// layers places every package of the module in a room (the longest
// matching path prefix) with a rank: a package may import a package of its
// own room, or of any room of a lower rank, and nothing else. Rooms of the
// same rank are independent of each other: domain, eventstore and client
// share rank 1 so that none of them may know another (domain decides
// without knowing storage, the store keeps opaque records, the device
// library knows nothing of the server). The ranks follow the data flow of
// DESIGN.md: cmd → internal/server → transport, automation, monitor → c2 →
// projections → internal/eventcodec → domain → suites, eventstore.
//
// A new package that matches no room fails the test: placing it is a
// design decision, made here where it is reviewed.
var layers = map[string]int{
	"suites":                0,
	"internal/buildinfo":    0,
	"internal/tlsfiles":     0,
	"internal/testwait":     0,
	"internal/pahostore":    0,
	"internal/natsnode":     0, // the embedded nats-server of serve --cluster
	"client":                1,
	"domain":                1,
	"eventstore":            1,
	"internal/config":       1,
	"internal/eventcodec":   2,
	"internal/lease":        2,
	"projections":           3,
	"c2":                    4,
	"internal/mosquittocfg": 4,
	"automation":            5,
	"monitor":               5, // a caller of the service like automation, fed by internal/server
	"transport":             6,
	"internal/eventreg":     6,
	"internal/server":       7,
	"benchmarks":            8,
	"cmd":                   9,
	"internal/testbroker":   9,
	"internal/c2test":       9,
	"internal/benchlog":     9,
	"internal/doccheck":     9,
	"internal/tools":        9,
}

// room returns the room of a module package (path relative to the module)
// and whether it has one.
func room(rel string) (string, bool) {
	best := ""
	for r := range layers {
		if (rel == r || strings.HasPrefix(rel, r+"/")) && len(r) > len(best) {
			best = r
		}
	}
	return best, best != ""
}

// layerViolations returns, sorted, the imports of graph (module-relative
// package → module-relative imports) that point sideways or up.
func layerViolations(graph map[string][]string) []string {
	var bad []string
	for pkg, imports := range graph {
		from, ok := room(pkg)
		if !ok {
			bad = append(bad, pkg+": in no room of the layers table")
			continue
		}
		for _, imp := range imports {
			to, ok := room(imp)
			if !ok {
				bad = append(bad, imp+": in no room of the layers table")
				continue
			}
			if to != from && layers[to] >= layers[from] {
				bad = append(bad, pkg+" imports "+imp+" ("+from+" may only import lower layers)")
			}
		}
	}
	sort.Strings(bad)
	return bad
}

// TestLayers fails when an import of the module points up or sideways,
// for example domain importing eventstore (domain decides; how events are
// stored and sealed is internal/eventcodec's business) or eventstore
// importing domain (the store keeps opaque records).
func TestLayers(t *testing.T) {
	graph := map[string][]string{}
	for _, l := range goList(t, "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"/...") {
		f := strings.Fields(l)
		pkg := rel(f[0])
		graph[pkg] = nil
		for _, imp := range f[1:] {
			if r := rel(imp); r != imp {
				graph[pkg] = append(graph[pkg], r)
			}
		}
	}
	for _, want := range []string{"domain", "eventstore", "internal/eventcodec", "c2", "cmd/e4c2"} {
		if _, ok := graph[want]; !ok {
			t.Fatalf("go list did not list %s: the graph is not the module's", want)
		}
	}
	for _, v := range layerViolations(graph) {
		t.Error(v)
	}
}

// TestDomainAndSuitesReachNoStorage checks the whole dependency graph of
// domain and the suites, their tests included, for any storage package:
// TestLayers only sees the imports of non-test files.
func TestDomainAndSuitesReachNoStorage(t *testing.T) {
	forbidden := []string{"eventstore", "internal/eventcodec", "projections", "c2"}
	lines := goList(t, "list", "-deps", "-test", module+"/domain", module+"/suites/...")
	if len(lines) < 20 {
		t.Fatalf("go list returned only %d packages", len(lines))
	}
	for _, l := range lines {
		p := rel(strings.Fields(l)[0]) // "pkg [pkg.test]" variants
		for _, f := range forbidden {
			if p == f || strings.HasPrefix(p, f+"/") {
				t.Errorf("domain or suites (tests included) reach %s", p)
			}
		}
	}
}

// TestLayerViolationsDetected keeps the checker honest: an upward and a
// sideways import and an unplaced package are each reported.
func TestLayerViolationsDetected(t *testing.T) {
	got := layerViolations(map[string][]string{
		"domain":          {"suites/core", "eventstore"},
		"eventstore/bolt": {"eventstore", "domain"},
		"c2":              {"projections", "client/credential"},
		"newroom/x":       nil,
	})
	want := []string{
		"domain imports eventstore (domain may only import lower layers)",
		"eventstore/bolt imports domain (eventstore may only import lower layers)",
		"newroom/x: in no room of the layers table",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// rel returns p relative to the module, or p itself when it is outside.
func rel(p string) string {
	if p == module {
		return "."
	}
	return strings.TrimPrefix(p, module+"/")
}

// goList runs the go tool and returns its output lines; the test skips
// when no go tool is available (as the suites/fips graph test does).
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	gotool, err := exec.LookPath("go")
	if err != nil {
		if root := os.Getenv("GOROOT"); root != "" {
			gotool = filepath.Join(root, "bin", "go")
		}
		if _, serr := os.Stat(gotool); gotool == "" || serr != nil {
			t.Skip("the go tool is not available: cannot list the import graph")
		}
	}
	out, err := exec.Command(gotool, args...).Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}
