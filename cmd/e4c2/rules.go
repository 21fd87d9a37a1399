package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/e4c2/e4c2/transport/http/apiclient"
)

// maxSpecFile bounds a rule spec or sample event file (the API refuses
// bodies over 1 MiB anyway).
const maxSpecFile = 1 << 20

// readJSONFile reads a JSON document from a file ("-": stdin) and checks
// it is JSON, so a typo is reported here rather than as a server 400.
func readJSONFile(cmd *cobra.Command, path, what string) (json.RawMessage, error) {
	var r io.Reader
	if path == "-" {
		r = cmd.InOrStdin()
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("%s file: %w", what, err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxSpecFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s file: %w", what, err)
	}
	if len(b) > maxSpecFile {
		return nil, fmt.Errorf("%s file %s is larger than %d bytes", what, path, maxSpecFile)
	}
	if !json.Valid(b) {
		return nil, withHint(fmt.Errorf("%s file %s is not valid JSON", what, path),
			"automation/RULES.md describes the rule format, with examples")
	}
	return b, nil
}

// ruleSummary is the part of a spec the tables show.
type ruleSummary struct {
	Trigger struct {
		Event string `json:"event"`
		Every string `json:"every"`
		Cron  string `json:"cron"`
	} `json:"trigger"`
	Action struct {
		Type string `json:"type"`
	} `json:"action"`
}

func summarize(spec json.RawMessage) (trigger, action string) {
	var s ruleSummary
	_ = json.Unmarshal(spec, &s) // a table cell, best effort
	switch {
	case s.Trigger.Every != "":
		trigger = "every " + s.Trigger.Every
	case s.Trigger.Cron != "":
		trigger = "cron " + s.Trigger.Cron
	case s.Trigger.Event != "":
		trigger = "event"
	}
	return trigger, s.Action.Type
}

var ruleHeader = []string{"ID", "STATUS", "TRIGGER", "ACTION", "FIRES", "LAST-OUTCOME", "NEXT-FIRE"}

func ruleTable(items []apiclient.Rule) func(*table) {
	return func(t *table) {
		for _, r := range items {
			trig, act := summarize(r.Spec)
			t.row(r.ID, r.Status, trig, act, r.Fires, r.LastOutcome, r.NextFire)
		}
	}
}

// ruleAPIError adds the rule hints to apiOpts.apiError.
func ruleAPIError(err error) error {
	var ae *apiclient.Error
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.Code {
	case "unknown_rule":
		return withHint(err, "e4c2 rule list shows the rules")
	case "invalid_expression", "invalid_rule":
		return withHint(err, "automation/RULES.md describes the rule format; e4c2 rule dry-run --file checks a spec without creating it")
	case "rules_unavailable":
		return withHint(err, "this server runs no automation engine")
	}
	return err
}

// runRuleAPI is runAPI with the rule hints.
func runRuleAPI(o *apiOpts, fn func(cmd *cobra.Command, c *apiclient.Client, args []string) error) func(*cobra.Command, []string) error {
	return runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
		return ruleAPIError(fn(cmd, c, args))
	})
}

// printRule prints one rule: --json as the API returned it, else a
// one-line confirmation.
func printRule(cmd *cobra.Command, o *apiOpts, r apiclient.Rule, verb string) error {
	if o.json {
		return o.printJSON(cmd, r)
	}
	msg := fmt.Sprintf("rule %s %s (%s)", r.ID, verb, r.Status)
	if r.Reason != "" {
		msg += ": " + cell(r.Reason)
	}
	_, err := fmt.Fprintln(cmd.OutOrStdout(), msg)
	return err
}

func newRuleCmd() *cobra.Command {
	o := &apiOpts{}
	var file, reason, eventFile string

	create := &cobra.Command{
		Use: "create --file SPEC.json", Short: "create an automation rule from a JSON spec (compiled now; nothing fires on creation unless asked)", Args: cobra.NoArgs,
		RunE: runRuleAPI(o, func(cmd *cobra.Command, c *apiclient.Client, _ []string) error {
			spec, err := readJSONFile(cmd, file, "spec")
			if err != nil {
				return err
			}
			r, err := c.CreateRule(cmd.Context(), spec)
			if err != nil {
				return err
			}
			return printRule(cmd, o, r, "created")
		}),
	}
	create.Flags().StringVar(&file, "file", "", "rule spec (JSON; - for stdin)")
	_ = create.MarkFlagRequired("file")

	list := &cobra.Command{
		Use: "list", Short: "list the automation rules", Args: cobra.NoArgs,
		RunE: runRuleAPI(o, func(cmd *cobra.Command, c *apiclient.Client, _ []string) error {
			rs, err := c.ListRules(cmd.Context())
			if err != nil {
				return err
			}
			return printPage(cmd, o, rs, "", ruleTable(rs), ruleHeader...)
		}),
	}

	getCmd := &cobra.Command{
		Use: "get ID", Short: "show a rule: its state and its spec", Args: cobra.ExactArgs(1),
		RunE: runRuleAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			r, err := c.GetRule(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if o.json {
				return o.printJSON(cmd, r)
			}
			t := newTable(cmd.OutOrStdout(), ruleHeader...)
			ruleTable([]apiclient.Rule{r})(t)
			if err := t.flush(); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "\ncreated %s by %s, updated %s, version %d\n", cell(r.Created), cell(r.CreatedBy), cell(r.Updated), r.Version)
			if r.Reason != "" {
				fmt.Fprintf(w, "reason: %s\n", cell(r.Reason))
			}
			if !r.LastFired.IsZero() {
				fmt.Fprintf(w, "last fired %s\n", cell(r.LastFired))
			}
			fmt.Fprintln(w, "spec:")
			return printRawJSON(w, r.Spec)
		}),
	}

	update := &cobra.Command{
		Use: "update ID --file SPEC.json", Short: "replace a rule's spec (its status is kept)", Args: cobra.ExactArgs(1),
		RunE: runRuleAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			spec, err := readJSONFile(cmd, file, "spec")
			if err != nil {
				return err
			}
			r, err := c.UpdateRule(cmd.Context(), args[0], spec)
			if err != nil {
				return err
			}
			return printRule(cmd, o, r, "updated")
		}),
	}
	update.Flags().StringVar(&file, "file", "", "new rule spec (JSON; - for stdin)")
	_ = update.MarkFlagRequired("file")

	pause := &cobra.Command{
		Use: "pause ID", Short: "pause a rule (the reason is recorded)", Args: cobra.ExactArgs(1),
		RunE: runRuleAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			r, err := c.PauseRule(cmd.Context(), args[0], reason)
			if err != nil {
				return err
			}
			return printRule(cmd, o, r, "paused")
		}),
	}
	pause.Flags().StringVar(&reason, "reason", "", "why (recorded in the log; no secrets)")

	resume := &cobra.Command{
		Use: "resume ID", Short: "resume a paused rule, or one the loop guard stopped", Args: cobra.ExactArgs(1),
		RunE: runRuleAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			r, err := c.ResumeRule(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printRule(cmd, o, r, "resumed")
		}),
	}

	deleteCmd := &cobra.Command{
		Use: "delete ID", Short: "delete a rule (its events stay; its id is never reused)", Args: cobra.ExactArgs(1),
		RunE: runRuleAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			if err := c.DeleteRule(cmd.Context(), args[0]); err != nil {
				return err
			}
			return done(cmd, o, "rule "+args[0]+" deleted", map[string]any{"rule": args[0]})
		}),
	}

	dryRun := &cobra.Command{
		Use:   "dry-run (--file SPEC.json | ID)",
		Short: "show what a rule would do now (targets and operations) without doing it",
		Args:  cobra.MaximumNArgs(1),
		RunE: runRuleAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			if (len(args) == 1) == (file != "") {
				return errors.New("give a rule id or --file SPEC.json (not both)")
			}
			var event json.RawMessage
			if eventFile != "" {
				var err error
				if event, err = readJSONFile(cmd, eventFile, "event"); err != nil {
					return err
				}
			}
			var p apiclient.RulePlan
			var err error
			if file != "" {
				spec, rerr := readJSONFile(cmd, file, "spec")
				if rerr != nil {
					return rerr
				}
				p, err = c.DryRunSpec(cmd.Context(), spec, event)
			} else {
				p, err = c.DryRunRule(cmd.Context(), args[0], event)
			}
			if err != nil {
				return err
			}
			return printPlan(cmd, o, p)
		}),
	}
	dryRun.Flags().StringVar(&file, "file", "", "rule spec to try (JSON; - for stdin) instead of an existing rule")
	dryRun.Flags().StringVar(&eventFile, "event-file", "", "sample event (JSON: type, topic, client, ...) for an event rule")

	return apiCmd("rule", "Manage automation rules (see automation/RULES.md)", o,
		create, list, getCmd, update, pause, resume, deleteCmd, dryRun)
}

// printPlan prints a dry run: a summary line, then the operations.
func printPlan(cmd *cobra.Command, o *apiOpts, p apiclient.RulePlan) error {
	if o.json {
		return o.printJSON(cmd, p)
	}
	w := cmd.OutOrStdout()
	var b strings.Builder
	fmt.Fprintf(&b, "dry run of rule %s (%s trigger)", p.Rule, p.Trigger)
	if p.Matched != nil {
		fmt.Fprintf(&b, ", condition matched: %v", *p.Matched)
	}
	if !p.NextFire.IsZero() {
		fmt.Fprintf(&b, ", next fire %s", cell(p.NextFire))
	}
	fmt.Fprintf(&b, ": %d target(s), %d operation(s); nothing was done", len(p.Targets), len(p.Operations))
	fmt.Fprintln(w, b.String())
	if p.Error != "" {
		fmt.Fprintf(w, "evaluation error (a fire would fail): %s\n", cell(p.Error))
	}
	if len(p.Operations) == 0 {
		return nil
	}
	t := newTable(w, "OPERATION", "TOPIC", "CLIENT", "SOURCE")
	for _, op := range p.Operations {
		t.row(op.Op, op.Topic, op.Client, op.Source)
	}
	return t.flush()
}
