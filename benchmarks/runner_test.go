package benchmarks

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunSmoke runs the whole runner with tiny sizes: every group, the
// JSON report, the charts and a comparison with itself. With -short only
// the standard suite and the store run.
func TestRunSmoke(t *testing.T) {
	dir := t.TempDir()
	o := Options{
		Groups:     AllGroups,
		MinTime:    time.Millisecond,
		AppendTime: 100 * time.Millisecond,
		Events:     1500,
		Devices:    []int{20},
		Rotations:  1,
		AttachOps:  60, AttachDevices: 20,
		Clients: 300,
		Dir:     dir,
		Out:     filepath.Join(dir, "r.json"),
		Charts:  filepath.Join(dir, "charts"),
		Farm:    testFarm,
		Quiet:   true,
	}
	if _, err := os.Stat(MosquittoPath); err != nil {
		t.Logf("mosquitto is not installed at %s: fan-out through the embedded broker only", MosquittoPath)
		o.Brokers = []string{"embedded"}
	}
	if testing.Short() {
		o.Groups, o.Suites = []string{RunSuites, RunStore}, []string{"standard"}
	}
	var out bytes.Buffer
	o.Stdout = &out
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	wantGroups := []string{GroupSymmetric, GroupSignature, GroupCommand, GroupKDF, GroupOverhead, GroupStore}
	if !testing.Short() {
		wantGroups = append(wantGroups, GroupFanout, GroupAttach, GroupMemory)
	}
	for _, g := range wantGroups {
		grp := rep.Group(g)
		if grp == nil || len(grp.Rows) == 0 {
			t.Errorf("no rows in group %s", g)
			continue
		}
		for _, r := range grp.Rows {
			if !(r.Value > 0) {
				t.Errorf("%s: value %v", r.Key(g), r.Value)
			}
			if r.BaselineValue > 0 && !(r.Ratio > 0) {
				t.Errorf("%s: baseline without ratio", r.Key(g))
			}
		}
	}
	if !strings.Contains(out.String(), "protect 1KiB") {
		t.Errorf("table lacks the suite rows:\n%s", out.String())
	}
	// The report on disk reads back, and compares with itself at 1.0.
	again, err := LoadReport(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	cs, missing := Compare(again, rep)
	if len(missing) != 0 || len(cs) == 0 {
		t.Fatalf("self comparison: %d rows, missing %v", len(cs), missing)
	}
	for _, c := range cs {
		if c.Old != 0 && c.Ratio != 1 {
			t.Errorf("%s: self ratio %v", c.Key, c.Ratio)
		}
	}
	ents, err := os.ReadDir(o.Charts)
	if err != nil || len(ents) != len(rep.Groups) {
		t.Fatalf("charts: %d files for %d groups (%v)", len(ents), len(rep.Groups), err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(o.Charts, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		wellFormed(t, string(b))
	}
}

func TestRunRejectsUnknownGroup(t *testing.T) {
	if _, err := Run(context.Background(), Options{Groups: []string{"nope"}, Stdout: &bytes.Buffer{}}); err == nil {
		t.Fatal("accepted an unknown group")
	}
	if _, err := Run(context.Background(), Options{Suites: []string{"nope"}, Stdout: &bytes.Buffer{}}); err == nil {
		t.Fatal("accepted an unknown suite")
	}
}

func TestRunFromReport(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "old.json")
	if err := writeFile(path, sampleReport(1).WriteJSON); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep, err := Run(context.Background(), Options{Report: path, Compare: path, Charts: filepath.Join(dir, "c"), Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Groups) != 2 || !strings.Contains(out.String(), "comparison with") || !strings.Contains(out.String(), "1.000") {
		t.Fatalf("output:\n%s", out.String())
	}
	if ents, err := os.ReadDir(filepath.Join(dir, "c")); err != nil || len(ents) != 2 {
		t.Fatalf("charts %v %v", ents, err)
	}
}
