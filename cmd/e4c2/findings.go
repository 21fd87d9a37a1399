package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/e4c2/e4c2/transport/http/apiclient"
)

func newFindingsCmd() *cobra.Command {
	o := &apiOpts{}
	var q apiclient.FindingQuery
	var since string
	c := &cobra.Command{
		Use:   "findings [--topic T] [--client C] [--kind K] [--since D]",
		Short: "the traffic monitor's findings (forged, old key, plaintext, replay, rate anomalies...), newest first",
		Args:  cobra.NoArgs,
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, _ []string) error {
			var err error
			if q.Since, err = parseTime(since, time.Now()); err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			l, err := c.Findings(cmd.Context(), q)
			if err != nil {
				return err
			}
			if !l.MonitorEnabled {
				fmt.Fprintln(cmd.ErrOrStderr(), "e4c2: note: this server's monitor is off (e4c2 serve --monitor); these findings are those in its log")
			}
			if o.json {
				return o.printJSON(cmd, l)
			}
			return printFindings(cmd, l.Items)
		}),
	}
	f := c.Flags()
	f.StringVar(&q.Topic, "topic", "", "only findings of this topic")
	f.StringVar(&q.Client, "client", "", "only findings of this publisher (name or hex id)")
	f.StringVar(&q.Kind, "kind", "", "only findings of this kind (old_key, forged, plaintext, replay, stale, future, unknown_signer, not_member, consumer_publish, rate_spike, rate_drop, sampled)")
	f.StringVar(&since, "since", "", "recorded at or after this RFC 3339 time or duration ago (e.g. 1h)")
	f.IntVar(&q.Limit, "limit", 0, "at most this many (0: server default 100; at most 1000)")
	addAPIFlags(c, o)
	return c
}

func printFindings(cmd *cobra.Command, items []apiclient.Finding) error {
	t := newTable(cmd.OutOrStdout(), "TIME WINDOW", "KIND", "TOPIC", "CLIENT", "COUNT", "KEY-VERSION", "REASON")
	for _, f := range items {
		topic, client := f.Topic, f.Client
		if topic == "" {
			topic = f.TopicHash
		}
		if client == "" {
			client = f.ClientID
		}
		kv := any("-")
		if f.KeyVersion > 0 {
			kv = f.KeyVersion
		}
		t.row(findingWindow(f.WindowStart, f.WindowEnd), f.Kind, topic, client, f.Count, kv, f.Reason)
	}
	return t.flush()
}

// findingWindow renders a window as START/END, the end as a time of day
// when it is on the start's day (UTC).
func findingWindow(start, end time.Time) string {
	start, end = start.UTC(), end.UTC()
	e := end.Format(time.RFC3339)
	if start.Format(time.DateOnly) == end.Format(time.DateOnly) {
		e = end.Format("15:04:05Z")
	}
	return start.Format(time.RFC3339) + "/" + e
}

func newMonitorCmd() *cobra.Command {
	c := &cobra.Command{Use: "monitor", Short: "the server's traffic monitor (e4c2 serve --monitor)", Args: cobra.NoArgs}
	o := &apiOpts{}
	status := &cobra.Command{
		Use:   "status",
		Short: "this server's monitor: queue, counters, per-topic rates and class shares, publishers",
		Args:  cobra.NoArgs,
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, _ []string) error {
			st, err := c.MonitorStatus(cmd.Context())
			if err != nil {
				return err
			}
			if o.json {
				return o.printJSON(cmd, st)
			}
			return printMonitorStatus(cmd, st)
		}),
	}
	addAPIFlags(status, o)
	c.AddCommand(status)
	return c
}

func printMonitorStatus(cmd *cobra.Command, st apiclient.MonitorStatus) error {
	w := cmd.OutOrStdout()
	if !st.Enabled || st.Queue == nil || st.Counts == nil {
		_, err := fmt.Fprintln(w, "monitor:   off (e4c2 serve --monitor turns it on; e4c2 findings still lists the findings in the log)")
		return err
	}
	n := st.Counts
	fmt.Fprintln(w, "monitor:   on")
	fmt.Fprintf(w, "queue:     %d of %d\n", st.Queue.Used, st.Queue.Size)
	fmt.Fprintf(w, "messages:  %d offered, %d classified, %d dropped, %d on unmanaged topics\n", n.Offered, n.Classified, n.Dropped, n.Unmanaged)
	if n.Sampling {
		fmt.Fprintln(w, "sampling:  yes (the queue was full: some messages were not classified)")
	} else {
		fmt.Fprintln(w, "sampling:  no")
	}
	fmt.Fprintf(w, "findings:  %d recorded, %d record errors\n", n.Findings, n.RecordErrors)
	if len(st.Topics) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, "TOPIC", "MESSAGES", "RATE/S", "BASELINE", "SPIKES", "DROPS", "CLASSES")
		for _, tp := range st.Topics {
			t.row(tp.Topic, tp.Messages, fmt.Sprintf("%.2f", tp.Rate), tp.Baseline, tp.Spikes, tp.Drops, classShares(tp.Shares))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(st.Clients) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, "CLIENT", "MESSAGES", "CLASSES")
		for _, cl := range st.Clients {
			name := cl.Client
			if name == "" {
				name = cl.ClientID
			}
			if name == "" {
				name = "(others)"
			}
			t.row(name, cl.Messages, classCounts(cl.Classes))
		}
		return t.flush()
	}
	return nil
}

// classShares renders shares as "current 50.0%, plaintext 50.0%", the
// largest first.
func classShares(shares map[string]float64) string {
	names := sortedBy(shares)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %.1f%%", n, 100*shares[n])
	}
	return strings.Join(parts, ", ")
}

func classCounts(counts map[string]uint64) string {
	names := sortedBy(counts)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d", n, counts[n])
	}
	return strings.Join(parts, ", ")
}

// sortedBy returns the keys of m, the largest value first, then by name.
func sortedBy[V uint64 | float64](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if m[names[i]] != m[names[j]] {
			return m[names[i]] > m[names[j]]
		}
		return names[i] < names[j]
	})
	return names
}
