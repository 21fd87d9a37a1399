package benchmarks

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of one run: what machine, when, and the groups of
// measurements. It is what --out writes and --compare reads.
type Report struct {
	// Format is the JSON layout version (ReportFormat).
	Format  int       `json:"format"`
	Started time.Time `json:"started"`
	Machine Machine   `json:"machine"`
	Groups  []Group   `json:"groups"`
	// Errors lists the groups that failed (the others were measured).
	Errors []string `json:"errors,omitempty"`
	// Warnings say why some figures of the run are not stable enough to
	// compare (too short a run); the table repeats them.
	Warnings []string `json:"warnings,omitempty"`
}

// Warn records a warning about the run (once per text).
func (rep *Report) Warn(w string) {
	if !slices.Contains(rep.Warnings, w) {
		rep.Warnings = append(rep.Warnings, w)
	}
}

// ReportFormat is the current JSON layout version.
const ReportFormat = 1

// Machine describes where a report was measured.
type Machine struct {
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	MemTotal  string `json:"mem_total,omitempty"`
}

// Group is a set of comparable measurements (one table section, one chart).
type Group struct {
	Name  string `json:"name"`  // stable key: "symmetric", "signature", ...
	Title string `json:"title"` // human title
	Rows  []Row  `json:"rows"`
}

// Row is one measurement. Value is in Unit; when the row has a same-run
// baseline, BaselineValue is the baseline in the same unit and Ratio is
// Value / BaselineValue.
type Row struct {
	Suite         string  `json:"suite,omitempty"` // "standard", "fips", "pq", or a variant ("embedded")
	Mode          string  `json:"mode,omitempty"`
	Op            string  `json:"op"`
	Size          int     `json:"size,omitempty"`      // payload bytes, or a count when SizeKind is "n"
	SizeKind      string  `json:"size_kind,omitempty"` // "" (bytes) or "n" (devices, events, clients, operations)
	Value         float64 `json:"value"`
	Unit          string  `json:"unit"`
	Baseline      string  `json:"baseline,omitempty"`
	BaselineValue float64 `json:"baseline_value,omitempty"`
	Ratio         float64 `json:"ratio,omitempty"`
	Note          string  `json:"note,omitempty"`
}

// Key identifies a row across runs: group, suite, mode, op and size.
func (r Row) Key(group string) string {
	return fmt.Sprintf("%s/%s/%s/%s/%d", group, r.Suite, r.Mode, r.Op, r.Size)
}

// Label is the row's name in tables and charts.
func (r Row) Label() string {
	s := r.Op
	switch {
	case r.Size > 0 && r.SizeKind == "n":
		s += fmt.Sprintf(" n=%d", r.Size)
	case r.Size > 0:
		s += " " + sizeLabel(r.Size)
	}
	return s
}

// Series is the row's suite and mode, the colour of its bar.
func (r Row) Series() string {
	switch {
	case r.Suite == "":
		return "-"
	case r.Mode == "":
		return r.Suite
	}
	return r.Suite + "-" + r.Mode
}

func sizeLabel(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1024 && n%1024 == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// withRatio fills Ratio from Value and BaselineValue.
func (r Row) withRatio() Row {
	if r.BaselineValue > 0 {
		r.Ratio = r.Value / r.BaselineValue
	}
	return r
}

// Add appends rows to the group named name, creating it with title.
func (rep *Report) Add(name, title string, rows ...Row) {
	for i := range rep.Groups {
		if rep.Groups[i].Name == name {
			rep.Groups[i].Rows = append(rep.Groups[i].Rows, rows...)
			return
		}
	}
	rep.Groups = append(rep.Groups, Group{Name: name, Title: title, Rows: rows})
}

// Group returns the group named name, or nil.
func (rep *Report) Group(name string) *Group {
	for i := range rep.Groups {
		if rep.Groups[i].Name == name {
			return &rep.Groups[i]
		}
	}
	return nil
}

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return nil
}

// ErrReportFormat is returned for a JSON report this version cannot read.
var ErrReportFormat = errors.New("benchmarks: unsupported report format")

// ReadReport parses a report written by WriteJSON.
func ReadReport(r io.Reader) (*Report, error) {
	var rep Report
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		return nil, fmt.Errorf("decode report: %w", err)
	}
	if rep.Format != ReportFormat {
		return nil, fmt.Errorf("%w: %d (want %d)", ErrReportFormat, rep.Format, ReportFormat)
	}
	return &rep, nil
}

// LoadReport reads a report file.
func LoadReport(path string) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open report: %w", err)
	}
	defer f.Close()
	return ReadReport(f)
}

// WriteTable prints the report as aligned text tables, one per group.
func (rep *Report) WriteTable(w io.Writer) error {
	for _, g := range rep.Groups {
		fmt.Fprintf(w, "\n%s\n", g.Title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "suite\top\tvalue\tunit\tbaseline\tratio\t\tnote\n")
		for _, r := range g.Rows {
			base, ratio := "", ""
			if r.BaselineValue > 0 {
				base = fmt.Sprintf("%s %s", formatValue(r.BaselineValue), r.Baseline)
				ratio = fmt.Sprintf("%.2fx", r.Ratio)
			} else if r.Baseline != "" {
				base = r.Baseline
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\t%s\n", r.Series(), r.Label(), formatValue(r.Value), r.Unit, base, ratio, r.Note)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(w, "\nFAILED (no figures): %s\n", e)
	}
	for _, wn := range rep.Warnings {
		fmt.Fprintf(w, "\nWARNING: %s\n", wn)
	}
	return nil
}

// WriteMarkdown prints the report as Markdown: the run's date, machine and
// revision, one table per group (with each row's note: the spread of
// repeated measurements), then the failures and warnings. regen.sh puts it
// into the README, so that every figure there comes from one run.
func (rep *Report) WriteMarkdown(w io.Writer, revision string) error {
	m := rep.Machine
	fmt.Fprintf(w, "Run of %s UTC, revision `%s`, on %s (%d CPUs, %s), %s %s/%s.\n",
		rep.Started.Format("2006-01-02 15:04"), revision, m.CPUModel, m.CPUs, m.MemTotal, m.GoVersion, m.OS, m.Arch)
	for _, g := range rep.Groups {
		fmt.Fprintf(w, "\n#### %s\n\n", g.Title)
		fmt.Fprintf(w, "| suite / variant | operation | value | baseline | ratio | note |\n|---|---|--:|--:|--:|---|\n")
		for _, r := range g.Rows {
			base, ratio := "", ""
			if r.BaselineValue > 0 {
				base = fmt.Sprintf("%s %s (%s)", formatThousands(r.BaselineValue), r.Unit, r.Baseline)
				ratio = fmt.Sprintf("%.2fx", r.Ratio)
			}
			fmt.Fprintf(w, "| %s | %s | %s %s | %s | %s | %s |\n", r.Series(), r.Label(), formatThousands(r.Value), r.Unit, base, ratio,
				strings.ReplaceAll(r.Note, "|", "/"))
		}
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(w, "\n**Failed (no figures):** %s\n", e)
	}
	for _, wn := range rep.Warnings {
		fmt.Fprintf(w, "\n**Warning:** %s\n", wn)
	}
	return nil
}

// formatThousands is formatValue with thousands separators.
func formatThousands(v float64) string {
	s := formatValue(v)
	if math.Abs(v) < 1000 {
		return s
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// formatValue prints a figure with about four significant digits.
func formatValue(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.4g", v)
}

// Comparison is one row present in both reports of Compare.
type Comparison struct {
	Key      string
	Unit     string
	Old, New float64
	// Ratio is New / Old (below 1: the new run is faster or smaller for
	// time and size units).
	Ratio float64
	// OldRatio and NewRatio are the rows' same-run baseline ratios, the
	// figure to trust on a noisy machine; RatioChange is NewRatio/OldRatio.
	OldRatio, NewRatio, RatioChange float64
}

// Compare pairs the rows of two reports by Key and returns their ratios,
// sorted by key. Rows present in only one report are listed in missing.
func Compare(old, cur *Report) (out []Comparison, missing []string) {
	oldRows := map[string]Row{}
	for _, g := range old.Groups {
		for _, r := range g.Rows {
			oldRows[r.Key(g.Name)] = r
		}
	}
	seen := map[string]bool{}
	for _, g := range cur.Groups {
		for _, r := range g.Rows {
			k := r.Key(g.Name)
			seen[k] = true
			o, ok := oldRows[k]
			if !ok {
				missing = append(missing, "new only: "+k)
				continue
			}
			c := Comparison{Key: k, Unit: r.Unit, Old: o.Value, New: r.Value, OldRatio: o.Ratio, NewRatio: r.Ratio}
			if o.Value != 0 {
				c.Ratio = r.Value / o.Value
			}
			if o.Ratio != 0 && r.Ratio != 0 {
				c.RatioChange = r.Ratio / o.Ratio
			}
			out = append(out, c)
		}
	}
	for k := range oldRows {
		if !seen[k] {
			missing = append(missing, "old only: "+k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	sort.Strings(missing)
	return out, missing
}

// WriteComparison prints the result of Compare.
func WriteComparison(w io.Writer, cs []Comparison, missing []string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "row\told\tnew\tunit\tnew/old\tbaseline ratio old -> new\t\n")
	for _, c := range cs {
		br := ""
		if c.RatioChange != 0 {
			br = fmt.Sprintf("%.2fx -> %.2fx (%.2f)", c.OldRatio, c.NewRatio, c.RatioChange)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.3f\t%s\t\n", c.Key, formatValue(c.Old), formatValue(c.New), c.Unit, c.Ratio, br)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, m := range missing {
		fmt.Fprintln(w, m)
	}
	return nil
}

// seriesOf lists the distinct series of a group in first-seen order.
func seriesOf(g Group) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range g.Rows {
		if s := r.Series(); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// labelsOf lists the distinct row labels of a group in first-seen order.
func labelsOf(g Group) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range g.Rows {
		if l := r.Label(); !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

// safeName makes a group name usable as a file name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '-'
	}, s)
}
