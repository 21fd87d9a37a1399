package benchmarks

import (
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// palette colours the series of a chart (suite-mode), in order.
var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"}

// WriteSVG draws group g as a grouped bar chart: one cluster of bars per
// operation, one bar per suite (and mode) in the cluster, so that suites are
// compared side by side, and a black mark across each bar at its same-run
// baseline (the chart's title names what it is compared with). The value axis is logarithmic when the values span
// more than two decades (the pq suite is orders of magnitude from the
// others), linear otherwise. Written by hand: a chart library would be a
// dependency for a few rectangles.
func WriteSVG(w io.Writer, g Group) error {
	labels, series := labelsOf(g), seriesOf(g)
	if len(labels) == 0 {
		return fmt.Errorf("chart %s: no rows", g.Name)
	}
	idx := map[string]int{}
	for i, s := range series {
		idx[s] = i
	}
	lo, hi := math.Inf(1), 0.0
	hasBase := false
	for _, r := range g.Rows {
		for _, v := range []float64{r.Value, r.BaselineValue} {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
		hasBase = hasBase || r.BaselineValue > 0
	}
	if hi == 0 {
		lo, hi = 1, 1
	}
	logScale := hi/lo > 100
	var axisLo, axisHi float64
	if logScale {
		axisLo, axisHi = math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	} else {
		axisLo, axisHi = 0, niceCeil(hi)
	}
	if axisHi <= axisLo {
		axisHi = axisLo + 1
	}
	scale := func(v float64) float64 { // 0..1
		if v <= 0 {
			return 0
		}
		if logScale {
			return math.Max(0, (math.Log10(v)-axisLo)/(axisHi-axisLo))
		}
		return (v - axisLo) / (axisHi - axisLo)
	}

	const (
		left, right, top, bottom = 110.0, 20.0, 50.0, 100.0
		plotH                    = 300.0
		barW, gap                = 14.0, 18.0
	)
	clusterW := float64(len(series))*barW + gap
	width := left + right + math.Max(float64(len(labels))*clusterW, 160)
	// Room for the title (about 8 px per character at 14 px bold) and the
	// legend's four columns.
	width = math.Max(width, math.Max(left+8*float64(len(g.Title)), left+150*float64(min(len(series), 4))))
	legendItems := len(series)
	if hasBase {
		legendItems++
	}
	legendH := 18.0 * float64((legendItems+3)/4)
	height := top + plotH + bottom + legendH
	unit := ""
	if len(g.Rows) > 0 {
		unit = g.Rows[0].Unit
	}

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(g.Title))
	scaleName := "linear"
	if logScale {
		scaleName = "log scale"
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="36" fill="#555">%s (%s, lower is better for times)</text>`+"\n", left, html.EscapeString(unit), scaleName)
	// Axis and grid.
	y0 := top + plotH
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, top, left, y0)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, y0, width-right, y0)
	ticks := 5
	if logScale {
		ticks = int(axisHi - axisLo)
	}
	for i := 0; i <= ticks; i++ {
		f := float64(i) / float64(ticks)
		y := y0 - f*plotH
		var v float64
		if logScale {
			v = math.Pow(10, axisLo+f*(axisHi-axisLo))
		} else {
			v = axisLo + f*(axisHi-axisLo)
		}
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, width-right, y)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-4, y+4, html.EscapeString(formatValue(v)))
	}
	// Bars.
	for li, l := range labels {
		x0 := left + gap/2 + float64(li)*clusterW
		for _, r := range g.Rows {
			if r.Label() != l {
				continue
			}
			si := idx[r.Series()]
			h := scale(r.Value) * plotH
			x := x0 + float64(si)*barW
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s %s</title></rect>`+"\n",
				x, y0-h, barW-2, h, palette[si%len(palette)], html.EscapeString(r.Series()), html.EscapeString(l),
				html.EscapeString(formatValue(r.Value)), html.EscapeString(r.Unit))
			// The same-run baseline the chart is titled against: a black
			// mark across the bar at the baseline's height.
			if r.BaselineValue > 0 {
				by := y0 - scale(r.BaselineValue)*plotH
				fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black" stroke-width="2"><title>baseline %s: %s %s</title></line>`+"\n",
					x-1, by, x+barW-1, by, html.EscapeString(r.Baseline), html.EscapeString(formatValue(r.BaselineValue)), html.EscapeString(r.Unit))
			}
		}
		cx := x0 + float64(len(series))*barW/2
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" transform="rotate(-35 %.1f %.1f)">%s</text>`+"\n",
			cx, y0+14, cx, y0+14, html.EscapeString(l))
	}
	// Legend.
	for i, s := range series {
		x := left + float64(i%4)*150
		y := top + plotH + bottom + float64(i/4)*18
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="12" height="12" fill="%s"/>`, x, y-10, palette[i%len(palette)])
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", x+16, y, html.EscapeString(s))
	}
	if hasBase {
		i := len(series)
		x := left + float64(i%4)*150
		y := top + plotH + bottom + float64(i/4)*18
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black" stroke-width="2"/>`, x, y-4, x+12, y-4)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">same-run baseline</text>`+"\n", x+16, y)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// WriteCharts writes one SVG per group of rep into dir and returns the
// file names.
func WriteCharts(rep *Report, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("chart directory: %w", err)
	}
	var files []string
	for _, g := range rep.Groups {
		if len(g.Rows) == 0 {
			continue
		}
		path := filepath.Join(dir, safeName(g.Name)+".svg")
		f, err := os.Create(path)
		if err != nil {
			return files, fmt.Errorf("chart %s: %w", g.Name, err)
		}
		err = WriteSVG(f, g)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return files, fmt.Errorf("chart %s: %w", g.Name, err)
		}
		files = append(files, path)
	}
	return files, nil
}
