package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/suites/core"
)

// The groups Run knows, in the order it runs them.
const (
	RunSuites = "suites"
	RunStore  = "store"
	RunFanout = "fanout"
	RunAttach = "attach"
	RunMemory = "memory"
)

// DefaultGroups are what Run measures when Options.Groups is empty: the
// suites, the store and the end-to-end fan-out. The attach and memory runs
// take longer and are asked for explicitly.
var DefaultGroups = []string{RunSuites, RunStore, RunFanout}

// AllGroups lists every group Run accepts.
var AllGroups = []string{RunSuites, RunStore, RunFanout, RunAttach, RunMemory}

// Options configure Run. The zero value (plus Farm) runs DefaultGroups with
// the default sizes.
type Options struct {
	Groups []string // subset of AllGroups (default DefaultGroups)
	Suites []string // suite names (default: every suite)
	// MinTime is the measuring time of each suite operation (default 300 ms).
	MinTime time.Duration
	// AppendTime is the measuring time of each store append run (default 2 s).
	AppendTime time.Duration
	// Events is the size of the replayed log (default 100,000).
	Events int
	// Devices are the fan-out sizes (default 1,000).
	Devices []int
	// Brokers are the fan-out brokers (default embedded and mosquitto).
	Brokers []string
	// Rotations per fan-out size and broker (default 3; the median is reported).
	Rotations int
	// AttachOps, AttachDevices: the attach run (default 5,000 and 1,000).
	AttachOps, AttachDevices int
	// Clients of the memory run (default 100,000).
	Clients int
	// Dir is where temporary stores live (default os.TempDir()): put it on
	// the disk the C2 would use, the store figures depend on it.
	Dir string

	// Out, Charts and Compare: JSON report file, SVG chart directory, and a
	// previous report to compare with (all optional).
	Out, Charts, Compare string
	// Markdown, if set, is a file that receives the tables as Markdown
	// (Report.WriteMarkdown), headed by Revision (e.g. the git commit).
	Markdown, Revision string
	// Report, if set, is an existing JSON report to print, plot and compare
	// instead of measuring anything.
	Report string

	// Farm starts this executable as a device farm (required for fanout
	// and attach); see RunFarmIfChild.
	Farm FarmCommand
	// Stdout receives the table and comparison, Stderr the progress bars.
	Stdout, Stderr io.Writer
	// Quiet hides the progress bars (e.g. when Stderr is not a terminal).
	Quiet bool
}

func (o *Options) defaults() {
	if len(o.Groups) == 0 {
		o.Groups = DefaultGroups
	}
	if o.MinTime <= 0 {
		o.MinTime = 300 * time.Millisecond
	}
	if o.AppendTime <= 0 {
		o.AppendTime = 2 * time.Second
	}
	if o.Events <= 0 {
		o.Events = 100_000
	}
	if len(o.Devices) == 0 {
		o.Devices = []int{1000}
	}
	if len(o.Brokers) == 0 {
		o.Brokers = []string{"embedded", "mosquitto"}
	}
	if o.Rotations <= 0 {
		o.Rotations = 3
	}
	if o.Clients <= 0 {
		o.Clients = 100_000
	}
	if o.Dir == "" {
		o.Dir = os.TempDir()
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
}

// ErrUsage reports invalid options.
var ErrUsage = errors.New("benchmarks: invalid options")

// SelfFarm is the FarmCommand of an executable that calls RunFarmIfChild
// before anything else: itself, with args.
func SelfFarm(args ...string) FarmCommand {
	return func() *exec.Cmd {
		exe, err := os.Executable()
		if err != nil {
			exe = os.Args[0]
		}
		return exec.Command(exe, args...)
	}
}

// Run measures the groups of o, prints the table to o.Stdout, writes the
// JSON report and the charts if asked, compares with an older report if
// asked, and returns the report.
func Run(ctx context.Context, o Options) (rep *Report, err error) {
	o.defaults()
	for _, g := range o.Groups {
		if !slices.Contains(AllGroups, g) {
			return nil, fmt.Errorf("%w: unknown group %q (valid: %s)", ErrUsage, g, strings.Join(AllGroups, ", "))
		}
	}
	var old *Report
	if o.Compare != "" {
		if old, err = LoadReport(o.Compare); err != nil {
			return nil, err
		}
	}
	var suiteList []core.Suite
	for _, s := range AllSuites() {
		if len(o.Suites) == 0 || slices.Contains(o.Suites, s.Name()) {
			suiteList = append(suiteList, s)
		}
	}
	if len(suiteList) == 0 {
		return nil, fmt.Errorf("%w: no suite selected", ErrUsage)
	}
	// A panic of a measurement (a suite failing on valid input) becomes
	// an error of the run.
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = fmt.Errorf("benchmark failed: %w", e)
			} else {
				err = fmt.Errorf("benchmark failed: %v", r)
			}
		}
	}()

	if o.Report != "" {
		if rep, err = LoadReport(o.Report); err != nil {
			return nil, err
		}
		return rep, o.output(rep, old)
	}
	rep = &Report{Format: ReportFormat, Started: time.Now().UTC().Truncate(time.Second), Machine: DescribeMachine()}
	warnShortRun(rep, &o)
	newBar := func(max int, desc string) *progressbar.ProgressBar {
		return progressbar.NewOptions(max,
			progressbar.OptionSetWriter(o.Stderr),
			progressbar.OptionSetVisibility(!o.Quiet),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetWidth(30),
			progressbar.OptionClearOnFinish(),
		)
	}
	var failures []error
	for _, g := range o.Groups {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		// A group that fails is reported and the others still run: a
		// long run should not lose every figure to one failure.
		if err := runGroup(ctx, rep, g, &o, suiteList, newBar); err != nil {
			failures = append(failures, fmt.Errorf("%s: %w", g, err))
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", g, err))
			fmt.Fprintf(o.Stderr, "e4c2 bench: %s failed: %v\n", g, err)
		}
	}

	if err := o.output(rep, old); err != nil {
		return rep, err
	}
	return rep, errors.Join(failures...)
}

// warnShortRun records, before measuring, the options that make a run too
// short for its ratios to be compared with another run's.
func warnShortRun(rep *Report, o *Options) {
	if slices.Contains(o.Groups, RunSuites) && o.MinTime < 100*time.Millisecond {
		rep.Warn(fmt.Sprintf("suites: --min-time %v leaves few chunks per operation; ratios below 100ms are unstable", o.MinTime))
	}
	if slices.Contains(o.Groups, RunStore) && o.AppendTime < time.Second {
		rep.Warn(fmt.Sprintf("store: --append-time %v is too short for stable append figures (default 2s)", o.AppendTime))
	}
	if slices.Contains(o.Groups, RunFanout) && o.Rotations < minRotations {
		rep.Warn(fmt.Sprintf("fanout: %d rotations are too few for a stable median and ratio (use --rotations %d or more)", o.Rotations, minRotations))
	}
}

// runGroup measures one group into rep.
func runGroup(ctx context.Context, rep *Report, g string, o *Options, suiteList []core.Suite, newBar func(int, string) *progressbar.ProgressBar) error {
	switch g {
	case RunSuites:
		steps := 0
		for _, s := range suiteList {
			steps += 2*len(PayloadSizes) + 1
			if _, ok := s.(core.PKSuite); ok {
				steps += 2*len(PayloadSizes) + 2
			}
		}
		bar := newBar(steps, "suites")
		for _, s := range suiteList {
			SuiteBench(rep, s, o.MinTime, func(step string) { bar.Describe(step); _ = bar.Add(1) })
		}
		_ = bar.Finish()
	case RunStore:
		bar := newBar(-1, "store")
		step := func(s string) { bar.Describe(s) }
		if err := StoreAppendBench(ctx, rep, o.Dir, o.AppendTime, step); err != nil {
			return fmt.Errorf("store append: %w", err)
		}
		_ = bar.Finish()
		bar = newBar(o.Events, "building the log")
		if err := ReplayBench(ctx, rep, o.Dir, o.Events, func(s string) { bar.Describe(s) }, func(n int) { _ = bar.Set(min(n, o.Events)) }); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		_ = bar.Finish()
	case RunFanout:
		if o.Farm == nil {
			return fmt.Errorf("%w: fanout needs a device farm command", ErrUsage)
		}
		// A size or broker that fails is reported; the others still run.
		var errs []error
		for _, n := range o.Devices {
			for _, broker := range o.Brokers {
				bar := newBar(-1, fmt.Sprintf("fan-out %d devices, %s", n, broker))
				fo := FanoutOptions{
					Devices: n, Broker: broker, Rotations: o.Rotations, Dir: o.Dir, Farm: o.Farm,
					Stage: stageBar(bar, fmt.Sprintf("fan-out %d/%s: ", n, broker)),
				}
				// The floor and the C2 in the same run, one after the
				// other, on the same machine and load: the ratio is the
				// figure; a failure of either (a device that failed
				// included) leaves no row for this size and broker.
				floor, err := Floor(ctx, fo)
				if err == nil {
					var res FanoutResult
					if res, err = Fanout(ctx, fo); err == nil {
						addFanout(rep, res, floor)
					}
				}
				_ = bar.Finish()
				if err != nil {
					errs = append(errs, fmt.Errorf("fan-out %d devices through %s: %w", n, broker, err))
				}
			}
		}
		return errors.Join(errs...)
	case RunAttach:
		if o.Farm == nil {
			return fmt.Errorf("%w: attach needs a device farm command", ErrUsage)
		}
		// Same topic first (callers race on one topic stream), then
		// spread over topics (they rarely do).
		for _, spread := range []bool{false, true} {
			bar := newBar(-1, "attach")
			res, err := Attach(ctx, AttachOptions{Devices: o.AttachDevices, Ops: o.AttachOps, Spread: spread, Dir: o.Dir, Farm: o.Farm, Stage: stageBar(bar, "attach: ")})
			_ = bar.Finish()
			if err != nil {
				return fmt.Errorf("attach: %w", err)
			}
			addAttach(rep, res)
		}
	case RunMemory:
		bar := newBar(o.Clients, "memory: registering clients")
		// The audit bound the server uses by default, so the figure is a
		// default deployment's.
		res, err := Memory(ctx, o.Dir, o.Clients, config.Default().AuditMemory, func(d, _ int) { _ = bar.Set(d) })
		_ = bar.Finish()
		if err != nil {
			return fmt.Errorf("memory: %w", err)
		}
		addMemory(rep, res)
	}
	return nil
}

// output prints the table, writes the JSON report and the charts, and
// prints the comparison with old, as the options ask.
func (o *Options) output(rep, old *Report) error {
	if err := rep.WriteTable(o.Stdout); err != nil {
		return err
	}
	if o.Out != "" {
		if err := writeFile(o.Out, rep.WriteJSON); err != nil {
			return err
		}
	}
	if o.Markdown != "" {
		if err := writeFile(o.Markdown, func(w io.Writer) error { return rep.WriteMarkdown(w, o.Revision) }); err != nil {
			return err
		}
	}
	if o.Charts != "" {
		files, err := WriteCharts(rep, o.Charts)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.Stdout, "\ncharts: %s\n", strings.Join(files, ", "))
	}
	if old != nil {
		cs, missing := Compare(old, rep)
		fmt.Fprintf(o.Stdout, "\ncomparison with %s (%s):\n", o.Compare, old.Started.Format(time.RFC3339))
		if err := WriteComparison(o.Stdout, cs, missing); err != nil {
			return err
		}
	}
	return nil
}

// CompareFiles prints the comparison of two report files (old, then new).
func CompareFiles(w io.Writer, oldPath, newPath string) error {
	old, err := LoadReport(oldPath)
	if err != nil {
		return err
	}
	cur, err := LoadReport(newPath)
	if err != nil {
		return err
	}
	cs, missing := Compare(old, cur)
	return WriteComparison(w, cs, missing)
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func stageBar(bar *progressbar.ProgressBar, prefix string) func(string, int, int) {
	return func(stage string, done, total int) {
		bar.Describe(prefix + stage)
		if total > 0 {
			if bar.GetMax() != total {
				bar.ChangeMax(total)
			}
			_ = bar.Set(done)
		}
	}
}

// Group names of the end-to-end measurements.
const (
	GroupFanout = "fanout"
	GroupAttach = "attach"
	GroupMemory = "memory"
)

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// floorTarget is the fan-out target: a rotation confirmed by every
// device within this multiple of the broker's own floor.
const floorTarget = 3

// minRotations is the fewest rotations whose median and ratio are worth
// comparing between runs; fewer draws a warning.
const minRotations = 5

// minFloor is the shortest floor whose ratio means something: below it
// the timing of the farm's pipe and the clock are a large part of it.
const minFloor = 20 * time.Millisecond

func addFanout(rep *Report, r FanoutResult, f FloorResult) {
	const title = "Fan-out: rotation until every device holds the C2's key and confirmed, vs the broker alone"
	fl, hold, conf, req := spreadOf(f.Rounds), spreadOf(r.AllHold), spreadOf(r.Confirmed), spreadOf(r.Request)
	base := fmt.Sprintf("%s alone, %d B QoS 2 to each device", f.Broker, f.Payload)
	rep.Add(GroupFanout, title,
		Row{Suite: r.Broker, Op: "floor (broker alone)", Size: r.Devices, SizeKind: "n", Value: ms(fl.Median), Unit: "ms",
			Note: fmt.Sprintf("%v; window %d", fl, f.Window)},
		Row{Suite: r.Broker, Op: "rotated and confirmed", Size: r.Devices, SizeKind: "n", Value: ms(conf.Median), Unit: "ms",
			Baseline: base, BaselineValue: ms(fl.Median), Note: fmt.Sprintf("%v; target <= %dx the floor", conf, floorTarget)}.withRatio(),
		Row{Suite: r.Broker, Op: "all hold the C2's key", Size: r.Devices, SizeKind: "n", Value: ms(hold.Median), Unit: "ms",
			Baseline: base, BaselineValue: ms(fl.Median), Note: hold.String()}.withRatio(),
		Row{Suite: r.Broker, Op: "rotation request", Size: r.Devices, SizeKind: "n", Value: ms(req.Median), Unit: "ms",
			Note: "durable new_topic call; " + req.String()},
	)
	if fl.Median < minFloor {
		rep.Warn(fmt.Sprintf("fan-out %d/%s: the floor is %v, too short for a stable ratio (use more devices, e.g. --devices 1000)", r.Devices, r.Broker, fl.Median.Round(time.Microsecond)))
	}
}

func addAttach(rep *Report, r AttachResult) {
	const title = "Attach (new_topic_client), concurrent callers, durable, delivered via embedded broker"
	variant := "same-topic"
	if r.Spread {
		variant = "spread"
	}
	rep.Add(GroupAttach, title,
		Row{Suite: variant, Op: fmt.Sprintf("throughput %d callers", r.Callers), Size: r.Ops, SizeKind: "n", Value: r.OpsPerSec, Unit: "ops/s",
			Note: fmt.Sprintf("all delivered and applied after %v; %d failed on contention %s", r.Delivered.Round(time.Millisecond), r.Failed, r.FirstFailure)},
		Row{Suite: variant, Op: "p50 latency", Size: r.Ops, SizeKind: "n", Value: ms(r.P50), Unit: "ms", Baseline: "write+fsync", BaselineValue: ms(r.Fsync)}.withRatio(),
		Row{Suite: variant, Op: "p99 latency", Size: r.Ops, SizeKind: "n", Value: ms(r.P99), Unit: "ms", Baseline: "write+fsync", BaselineValue: ms(r.Fsync)}.withRatio(),
	)
	if r.Failed > 0 {
		rep.Add(GroupAttach, title, Row{Suite: variant, Op: "failed on contention", Size: r.Ops, SizeKind: "n", Value: float64(r.Failed), Unit: "ops"})
	}
}

func addMemory(rep *Report, r MemoryResult) {
	const title = "C2 memory with registered clients"
	rep.Add(GroupMemory, title,
		Row{Op: "rss", Size: r.Clients, SizeKind: "n", Value: float64(r.RSS) / 1e6, Unit: "MB", Baseline: "rss before start", BaselineValue: float64(r.Base) / 1e6,
			Note: fmt.Sprintf("heap in use %.0f MB, MemStats.Sys %.0f MB, start (replay) %v", float64(r.HeapInuse)/1e6, float64(r.Sys)/1e6, r.Start.Round(time.Millisecond))}.withRatio(),
	)
}

// DescribeMachine returns what this process runs on.
func DescribeMachine() Machine {
	m := Machine{GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if _, v, ok := strings.Cut(l, ":"); ok {
					m.CPUModel = strings.TrimSpace(v)
					break
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "MemTotal:") {
				m.MemTotal = strings.Join(strings.Fields(l[len("MemTotal:"):]), " ")
				break
			}
		}
	}
	return m
}
