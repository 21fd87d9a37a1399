package benchmarks

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Flags holds the command-line form of Options, shared by e4c2 bench and
// e4c2-bench so both accept the same flags.
type Flags struct {
	groups, suites, brokers stringList
	devices                 intList
	opts                    Options
}

// BindFlags defines the runner's flags on fs.
func BindFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{}
	o := &f.opts
	fs.Var(&f.groups, "groups", "comma-separated groups to run: "+strings.Join(AllGroups, ",")+" (default "+strings.Join(DefaultGroups, ",")+")")
	fs.Var(&f.suites, "suites", "comma-separated suites to measure (default: all)")
	fs.Var(&f.devices, "devices", "comma-separated fan-out sizes, e.g. 1000,10000 (default 1000)")
	fs.Var(&f.brokers, "brokers", "comma-separated fan-out brokers: embedded,mosquitto (default both)")
	fs.IntVar(&o.Rotations, "rotations", 3, "timed rotations per fan-out size and broker (the median is reported)")
	fs.IntVar(&o.Events, "events", 100_000, "events in the replayed log (e.g. 1000000)")
	// The defaults are the flags' own, so --help prints each once.
	fs.DurationVar(&o.MinTime, "min-time", 300*time.Millisecond, "measuring time of each suite operation")
	fs.DurationVar(&o.AppendTime, "append-time", 2*time.Second, "measuring time of each store append run")
	fs.IntVar(&o.AttachOps, "attach-ops", 5000, "new_topic_client operations of the attach group")
	fs.IntVar(&o.AttachDevices, "attach-devices", 1000, "connected devices of the attach group")
	fs.IntVar(&o.Clients, "clients", 100_000, "registered clients of the memory group")
	fs.StringVar(&o.Dir, "dir", "", "directory for temporary stores (default: the system temp directory)")
	fs.StringVar(&o.Out, "out", "", "write the JSON report to this file")
	fs.StringVar(&o.Charts, "charts", "", "write one SVG chart per group into this directory")
	fs.StringVar(&o.Markdown, "markdown", "", "write the tables as Markdown to this file (for the README; see regen.sh)")
	fs.StringVar(&o.Revision, "revision", "", "revision named in the Markdown header (e.g. the git commit)")
	fs.StringVar(&o.Compare, "compare", "", "print ratios against this earlier JSON report")
	fs.StringVar(&o.Report, "report", "", "print, plot (--charts) and compare (--compare) this JSON report instead of measuring")
	fs.BoolVar(&o.Quiet, "quiet", false, "no progress bars")
	return f
}

// Options returns the options the parsed flags describe.
func (f *Flags) Options() Options {
	o := f.opts
	o.Groups, o.Suites, o.Brokers, o.Devices = f.groups, f.suites, f.brokers, f.devices
	return o
}

type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

// Type names the value in --help (pflag reads it instead of the Go type).
func (l *stringList) Type() string { return "list" }

func (l *stringList) Set(s string) error {
	*l = nil
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

type intList []int

func (l *intList) String() string {
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

// Type names the value in --help.
func (l *intList) Type() string { return "numbers" }

func (l *intList) Set(s string) error {
	*l = nil
	for _, p := range strings.Split(s, ",") {
		p = strings.ReplaceAll(strings.TrimSpace(p), "_", "")
		if p == "" {
			continue
		}
		v, err := strconv.Atoi(p)
		if err != nil || v <= 0 {
			return fmt.Errorf("%q is not a positive number", p)
		}
		*l = append(*l, v)
	}
	return nil
}
