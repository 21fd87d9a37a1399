package benchmarks

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

func sampleReport(scale float64) *Report {
	rep := &Report{Format: ReportFormat, Started: time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC), Machine: DescribeMachine()}
	rep.Add(GroupSymmetric, "Symmetric <layer> & co",
		Row{Suite: "standard", Op: "protect", Size: 1024, Value: 1800 * scale, Unit: "ns/op", Baseline: "cbc+ctr", BaselineValue: 2000}.withRatio(),
		Row{Suite: "fips", Op: "protect", Size: 1024, Value: 900 * scale, Unit: "ns/op", Baseline: "cbc+ctr", BaselineValue: 1000}.withRatio(),
		Row{Suite: "pq", Op: "protect", Size: 64, Value: 300_000 * scale, Unit: "ns/op"},
	)
	rep.Add(GroupFanout, "Fan-out",
		Row{Suite: "embedded", Op: "all hold new key", Size: 1000, SizeKind: "n", Value: 100 * scale, Unit: "ms"})
	return rep
}

func TestReportJSONRoundTrip(t *testing.T) {
	rep := sampleReport(1)
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := ReadReport(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := rep.WriteJSON(&a); err != nil {
		t.Fatal(err)
	}
	if err := got.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Fatalf("round trip changed the report:\n%s\n---\n%s", a.String(), b.String())
	}
	if g := got.Group(GroupSymmetric); g == nil || len(g.Rows) != 3 || g.Rows[0].Ratio != 0.9 {
		t.Fatalf("symmetric group after round trip: %+v", g)
	}
}

func TestReadReportRejects(t *testing.T) {
	for name, in := range map[string]string{
		"other format":  `{"format": 99, "groups": []}`,
		"unknown field": `{"format": 1, "bogus": true}`,
		"not json":      `results`,
		"truncated":     `{"format": 1, "groups": [`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ReadReport(strings.NewReader(in)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	_, err := ReadReport(strings.NewReader(`{"format": 99}`))
	if !errors.Is(err, ErrReportFormat) {
		t.Fatalf("format error %v does not wrap ErrReportFormat", err)
	}
}

func TestCompareRatios(t *testing.T) {
	old, cur := sampleReport(1), sampleReport(2)
	cur.Add(GroupStore, "Store", Row{Op: "append 1w", Value: 5, Unit: "us/event"})
	cs, missing := Compare(old, cur)
	if len(cs) != 4 {
		t.Fatalf("got %d comparisons, want 4: %+v", len(cs), cs)
	}
	for _, c := range cs {
		if math.Abs(c.Ratio-2) > 1e-9 {
			t.Errorf("%s: ratio %v, want 2", c.Key, c.Ratio)
		}
		if c.OldRatio != 0 && math.Abs(c.RatioChange-2) > 1e-9 {
			t.Errorf("%s: baseline-ratio change %v, want 2", c.Key, c.RatioChange)
		}
	}
	if len(missing) != 1 || !strings.Contains(missing[0], "append 1w") {
		t.Fatalf("missing = %q", missing)
	}
	var buf bytes.Buffer
	if err := WriteComparison(&buf, cs, missing); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "2.000") {
		t.Fatalf("comparison output lacks the ratio:\n%s", buf.String())
	}
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport(1).WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"protect 1KiB", "0.90x", "all hold new key n=1000", "Fan-out"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// wellFormed parses an SVG document as XML to the end and counts elements.
func wellFormed(t *testing.T, svg string) map[string]int {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(svg))
	counts := map[string]int{}
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			counts[se.Name.Local]++
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	return counts
}

func TestSVGWellFormed(t *testing.T) {
	for _, g := range sampleReport(1).Groups {
		t.Run(g.Name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteSVG(&buf, g); err != nil {
				t.Fatal(err)
			}
			counts := wellFormed(t, buf.String())
			// One bar per row, plus the background and one legend
			// swatch per series.
			if want := len(g.Rows) + 1 + len(seriesOf(g)); counts["rect"] != want {
				t.Fatalf("%d rect elements, want %d", counts["rect"], want)
			}
			if !strings.Contains(buf.String(), "&lt;layer&gt; &amp; co") && g.Name == GroupSymmetric {
				t.Fatal("title not escaped")
			}
			// Each row with a baseline draws its mark, and the legend
			// says what the marks are.
			marks, withBase := strings.Count(buf.String(), "<title>baseline "), 0
			for _, r := range g.Rows {
				if r.BaselineValue > 0 {
					withBase++
				}
			}
			if marks != withBase || (withBase > 0) != strings.Contains(buf.String(), "same-run baseline") {
				t.Fatalf("%d baseline marks for %d rows with a baseline", marks, withBase)
			}
		})
	}
	if err := WriteSVG(io.Discard, Group{Name: "empty"}); err == nil {
		t.Fatal("empty group drew a chart")
	}
}

func TestWriteCharts(t *testing.T) {
	dir := t.TempDir()
	files, err := WriteCharts(sampleReport(1), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("files %v", files)
	}
}

func TestSpreadAndMarkdown(t *testing.T) {
	sp := spreadOf([]time.Duration{5, 1, 3, 9, 2})
	if sp.Median != 3 || sp.Min != 1 || sp.Max != 9 || sp.N != 5 {
		t.Fatalf("spread %+v", sp)
	}
	rep := sampleReport(1)
	rep.Warn("too short")
	rep.Warn("too short")
	rep.Errors = []string{"fanout: device failed"}
	var buf bytes.Buffer
	if err := rep.WriteMarkdown(&buf, "abc123"); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"revision `abc123`", "| standard | protect 1KiB | 1,800 ns/op | 2,000 ns/op (cbc+ctr) | 0.90x |", "**Failed (no figures):** fanout: device failed", "**Warning:** too short"} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "too short") != 1 {
		t.Errorf("warning repeated:\n%s", out)
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i))
	}
	for p, want := range map[float64]time.Duration{50: 50, 99: 99, 100: 100, 0: 1} {
		if got := Percentile(ds, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if Percentile(nil, 99) != 0 {
		t.Error("percentile of nothing")
	}
}

func TestPairRatio(t *testing.T) {
	buf := make([]byte, 4096)
	work := func(n int) func() {
		return func() {
			for range n {
				for i := range buf {
					buf[i]++
				}
			}
		}
	}
	// op does four times the work of base. The machine is shared, so the
	// bounds are loose and a disturbed measurement gets two more tries;
	// what this checks is that Pair attributes the times to the right side.
	var r, op, base float64
	for range 3 {
		op, base = Pair(work(4), work(1), 20*time.Millisecond)
		if r = op / base; r >= 2 && r <= 8 {
			return
		}
	}
	t.Fatalf("ratio %v (op %v ns, base %v ns), want about 4", r, op, base)
}

func TestFlags(t *testing.T) {
	var l intList
	if err := l.Set("1000, 10_000"); err != nil || len(l) != 2 || l[1] != 10000 {
		t.Fatalf("intList %v %v", l, err)
	}
	if err := l.Set("ten"); err == nil {
		t.Fatal("accepted a non-number")
	}
	if err := l.Set("-1"); err == nil {
		t.Fatal("accepted a negative size")
	}
}

func TestBindFlags(t *testing.T) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := BindFlags(fs)
	err := fs.Parse([]string{"--groups", "fanout,attach", "--devices", "1000,10000", "--brokers", "mosquitto",
		"--events", "1000000", "--min-time", "50ms", "--out", "r.json", "--compare", "old.json"})
	if err != nil {
		t.Fatal(err)
	}
	o := f.Options()
	if strings.Join(o.Groups, ",") != "fanout,attach" || len(o.Devices) != 2 || o.Devices[1] != 10000 ||
		len(o.Brokers) != 1 || o.Events != 1_000_000 || o.MinTime != 50*time.Millisecond ||
		o.Out != "r.json" || o.Compare != "old.json" {
		t.Fatalf("options %+v", o)
	}
	if err := fs.Parse([]string{"--devices", "lots"}); err == nil {
		t.Fatal("accepted --devices lots")
	}
}
