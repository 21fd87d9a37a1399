package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/e4c2/e4c2/transport/http/apiclient"
)

// apiCmd builds a command group whose subcommands talk to the API.
func apiCmd(use, short string, o *apiOpts, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs}
	addAPIFlags(c, o)
	c.AddCommand(subs...)
	return c
}

// runAPI wraps an API action: it builds the client and maps its errors.
func runAPI(o *apiOpts, fn func(cmd *cobra.Command, c *apiclient.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := o.client()
		if err != nil {
			return err
		}
		return o.apiError(fn(cmd, c, args))
	}
}

// done prints a one-line confirmation, or {"ok":true,...} with --json: for
// the operations whose API answer has no body (204). An answer with a body
// is printed as the API sent it (apiOpts.printJSON).
func done(cmd *cobra.Command, o *apiOpts, msg string, fields map[string]any) error {
	if o.json {
		if fields == nil {
			fields = map[string]any{}
		}
		fields["ok"] = true
		return printJSON(cmd.OutOrStdout(), fields)
	}
	_, err := fmt.Fprintln(cmd.OutOrStdout(), msg)
	return err
}

func clientTable(items []apiclient.ClientInfo) func(*table) {
	return func(t *table) {
		for _, c := range items {
			t.row(c.Name, c.ID, c.Role, c.KeyVersion, c.Topics)
		}
	}
}

var clientHeader = []string{"NAME", "ID", "ROLE", "KEY-VERSION", "TOPICS"}

func topicTable(items []apiclient.Topic) func(*table) {
	return func(t *table) {
		for _, x := range items {
			t.row(x.Name, x.Hash, x.KeyVersion, x.Clients, x.RotatedAt)
		}
	}
}

var topicHeader = []string{"TOPIC", "HASH", "KEY-VERSION", "CLIENTS", "KEY-SINCE"}

// ---- client ----------------------------------------------------------------

func newClientCmd() *cobra.Command {
	o := &apiOpts{}
	var keyFile, pubFile, id, role string
	var replace bool
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "register a device with its key (--key-file, SK) or public key (--public-key-file, PK); --replace gives an existing one a new key (sent to it first)",
		Long: `Register a client with its key (SK: --key-file) or public key (PK: --public-key-file).

An existing client is refused: replacing its key silently would leave the
device with a key the C2 no longer uses. To give it a new random key, use
e4c2 client rotate-key NAME. To set a key you chose, pass --replace: the role
is kept and the key is replaced the way a rotation does it (SK: SetIdKey is
queued, protected with the key the device holds).`,
		Args: cobra.ExactArgs(1),
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			req := apiclient.NewClientRequest{Role: role, ID: id, Replace: replace}
			if args[0] != "-" {
				req.Name = args[0]
			}
			switch {
			case keyFile != "" && pubFile != "":
				return errors.New("give --key-file (SK) or --public-key-file (PK), not both")
			case keyFile != "":
				k, err := readKeyFile(keyFile)
				if err != nil {
					return err
				}
				req.Key = hex.EncodeToString(k)
				clear(k)
			case pubFile != "":
				k, err := readKeyFile(pubFile)
				if err != nil {
					return err
				}
				req.PublicKey = hex.EncodeToString(k)
			default:
				return withHint(errors.New("a key is required"),
					"make one with e4c2 keygen symmetric FILE (SK) or e4c2 keygen identity FILE (PK, then pass FILE.pub)")
			}
			cl, err := c.NewClient(cmd.Context(), req)
			if isCode(err, "client_exists") {
				return withHint(err, "e4c2 client rotate-key "+args[0]+" gives it a new random key; --replace sets this key (role kept, SetIdKey queued in SK mode)")
			}
			if err != nil {
				return err
			}
			if o.json {
				return o.printJSON(cmd, cl)
			}
			verb := "registered"
			if replace {
				verb = "registered or its key replaced"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "client %s %s (id %s, key version %d)\n", displayName(cl.Name, cl.ID), verb, cl.ID, cl.KeyVersion)
			return nil
		}),
	}
	add.Flags().StringVar(&keyFile, "key-file", "", "SK: file holding the client's symmetric key (e4c2 keygen symmetric)")
	add.Flags().StringVar(&pubFile, "public-key-file", "", "PK: file holding the client's public key (the .pub of e4c2 keygen identity)")
	add.Flags().StringVar(&id, "id", "", "hex id instead of a name (pass - as NAME)")
	add.Flags().StringVar(&role, "role", "", "rotation role: publisher, consumer or both (default both; --replace keeps the role)")
	add.Flags().BoolVar(&replace, "replace", false, "allow an existing client: keep its role, replace its key like a rotation (SK: SetIdKey)")

	remove := &cobra.Command{
		Use: "remove CLIENT", Short: "remove a device (the C2 forgets it and its keys; its commands still queued are dropped)", Args: cobra.ExactArgs(1),
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			if err := c.RemoveClient(cmd.Context(), args[0]); err != nil {
				return err
			}
			return done(cmd, o, "client "+args[0]+" removed", map[string]any{"client": args[0]})
		}),
	}
	get := &cobra.Command{
		Use: "get CLIENT", Short: "show a client (name or hex id)", Args: cobra.ExactArgs(1),
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			raw, err := c.GetClientJSON(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if o.json {
				return printRawJSON(cmd.OutOrStdout(), raw)
			}
			var cl apiclient.ClientInfo
			if err := json.Unmarshal(raw, &cl); err != nil {
				return fmt.Errorf("decode client: %w", err)
			}
			t := newTable(cmd.OutOrStdout(), clientHeader...)
			clientTable([]apiclient.ClientInfo{cl})(t)
			if err := t.flush(); err != nil {
				return err
			}
			return printSync(cmd.OutOrStdout(), cl.Sync)
		}),
	}
	var lp pageFlags
	list := &cobra.Command{
		Use: "list", Short: "list clients", Args: cobra.NoArgs,
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, _ []string) error {
			items, next, err := collect(lp, func(cur string, n int) (apiclient.Page[apiclient.ClientInfo], error) {
				return c.ListClients(cmd.Context(), cur, n)
			})
			if err != nil {
				return err
			}
			return printPage(cmd, o, items, next, clientTable(items), clientHeader...)
		}),
	}
	addPageFlags(list, &lp)
	count := &cobra.Command{
		Use: "count", Short: "count clients", Args: cobra.NoArgs,
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, _ []string) error {
			n, err := c.CountClients(cmd.Context())
			if err != nil {
				return err
			}
			return printCount(cmd, o, n)
		}),
	}
	rotate := &cobra.Command{
		Use: "rotate-key CLIENT", Short: "[SK] give a device a new random key (it gets SetIdKey, protected with the key it holds)", Args: cobra.ExactArgs(1),
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			if err := c.RotateClientKey(cmd.Context(), args[0]); err != nil {
				return err
			}
			return done(cmd, o, "client "+args[0]+" key rotated (SetIdKey queued)", map[string]any{"client": args[0]})
		}),
	}
	reset := &cobra.Command{
		Use: "reset CLIENT...", Short: "take every topic key from a device (it gets ResetTopics); several devices run as one batch", Args: cobra.MinimumNArgs(1),
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			if len(args) > 1 {
				res, err := c.BatchReset(cmd.Context(), args)
				if err != nil {
					return err
				}
				return printBatch(cmd, o, res, "reset")
			}
			if err := c.ResetClient(cmd.Context(), args[0]); err != nil {
				return err
			}
			return done(cmd, o, "client "+args[0]+" reset (ResetTopics queued)", map[string]any{"client": args[0]})
		}),
	}
	var tp pageFlags
	topics := &cobra.Command{
		Use: "topics CLIENT", Short: "topics of a client", Args: cobra.ExactArgs(1),
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			items, next, err := collect(tp, func(cur string, n int) (apiclient.Page[apiclient.Topic], error) {
				return c.ClientTopics(cmd.Context(), args[0], cur, n)
			})
			if err != nil {
				return err
			}
			return printPage(cmd, o, items, next, topicTable(items), topicHeader...)
		}),
	}
	addPageFlags(topics, &tp)
	var full bool
	resync := &cobra.Command{
		Use:   "resync CLIENT [--full]",
		Short: "queue what the device lacks (SetIdKey under the key it holds, SetC2Key, SetPubKey/RemovePubKey, SetTopicKey); --full resends every current key",
		Args:  cobra.ExactArgs(1),
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			res, err := c.Resync(cmd.Context(), args[0], full)
			if err != nil {
				return err
			}
			if o.json {
				return o.printJSON(cmd, res) // the API's answer: client and queued
			}
			return done(cmd, o, fmt.Sprintf("client %s: %s queued", args[0], plural(res.Queued, "command")),
				map[string]any{"client": args[0], "queued": res.Queued})
		}),
	}
	resync.Flags().BoolVar(&full, "full", false, "resend every current key, whether the device holds it or not")
	release := &cobra.Command{
		Use:   "release CLIENT",
		Short: "external broker: send a never-seen device's commands now instead of waiting for its first sighting",
		Args:  cobra.ExactArgs(1),
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			res, err := c.Release(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if o.json {
				return o.printJSON(cmd, res)
			}
			msg := fmt.Sprintf("client %s released: %s may go to the broker", args[0], plural(res.Commands, "command"))
			if res.Released == 0 {
				msg = "client " + args[0] + ": seen or released already, nothing to release"
			}
			return done(cmd, o, msg, map[string]any{"client": args[0], "released": res.Released, "commands": res.Commands})
		}),
	}
	return apiCmd("client", "Manage clients (devices)", o, add, remove, get, list, count, rotate, reset, topics, resync, release)
}

// plural renders "1 command", "3 commands".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// printRawJSON prints an API answer as the server sent it, only indented
// and with the HTML escapes of Go's encoder (\u0026, \u003c, \u003e)
// written as the characters they stand for: the same JSON value, readable.
func printRawJSON(w io.Writer, raw []byte) error {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	out := unescapeHTML(b.Bytes())
	out = append(out, '\n')
	_, err := w.Write(out)
	return err
}

// unescapeHTML replaces the escapes \u0026, \u003c and \u003e of valid
// JSON by &, < and >. Escapes are read in pairs, so an escaped backslash
// followed by "u0026" is left alone.
func unescapeHTML(js []byte) []byte {
	out := make([]byte, 0, len(js))
	for i := 0; i < len(js); i++ {
		if js[i] != '\\' || i+1 >= len(js) {
			out = append(out, js[i])
			continue
		}
		if js[i+1] == 'u' && i+5 < len(js) {
			switch strings.ToLower(string(js[i+2 : i+6])) {
			case "0026":
				out = append(out, '&')
				i += 5
				continue
			case "003c":
				out = append(out, '<')
				i += 5
				continue
			case "003e":
				out = append(out, '>')
				i += 5
				continue
			}
		}
		out = append(out, js[i], js[i+1])
		i++
	}
	return out
}

// printSync prints the sync view of a client: "accepted" means a broker
// took a command, "confirmed" that the device's own session took it.
func printSync(w io.Writer, s *apiclient.ClientSync) error {
	if s == nil {
		return nil
	}
	waiting := plural(s.Pending, "command") + " waiting"
	if !s.OldestPending.IsZero() {
		waiting += " (oldest queued " + s.OldestPending.UTC().Format(time.RFC3339) + ")"
	}
	var line string
	switch s.Status {
	case "never_seen":
		line = "never seen, " + waiting
		if s.Released {
			line = "never seen, released by an operator (commands go to the broker without a sighting), " + waiting
		}
	case "in_sync":
		line = "in sync"
		if s.Evidence == "confirmed" {
			line += " (every key confirmed by the device's session)"
		} else {
			line += " (some keys only accepted by the broker, not confirmed by the device's session)"
		}
	default:
		line = "lagging, " + waiting
	}
	if s.Seen && !s.FirstSeen.IsZero() {
		line += "; first seen " + s.FirstSeen.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "\nsync: %s\n", line)
	t := newTable(w, "KEY", "DESIRED", "ACCEPTED", "CONFIRMED")
	v := func(n uint64) any {
		if n == 0 {
			return "-"
		}
		return n
	}
	t.row("identity", v(s.Identity.Desired), v(s.Identity.Accepted), v(s.Identity.Confirmed))
	if s.C2Key != nil {
		t.row("c2key", v(s.C2Key.Desired), v(s.C2Key.Accepted), v(s.C2Key.Confirmed))
	}
	for _, tp := range s.Topics {
		t.row("topic "+displayName(tp.Topic, tp.Hash), v(tp.Desired), v(tp.Accepted), v(tp.Confirmed))
	}
	for _, pk := range s.PubKeys {
		name := "pubkey " + pk.Client
		if pk.Removed {
			name += " (removed client)"
		}
		t.row(name, v(pk.Desired), v(pk.Accepted), v(pk.Confirmed))
	}
	return t.flush()
}

func newStatusCmd() *cobra.Command {
	o := &apiOpts{}
	c := &cobra.Command{
		Use: "status", Short: "the fleet by sync status: in sync, lagging, never seen, commands pending", Args: cobra.NoArgs,
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, _ []string) error {
			f, err := c.Fleet(cmd.Context())
			if err != nil {
				return err
			}
			if o.json {
				return o.printJSON(cmd, f)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "clients:     %d\n", f.Clients)
			fmt.Fprintf(w, "in sync:     %d\n", f.InSync)
			fmt.Fprintf(w, "lagging:     %d\n", f.Lagging)
			fmt.Fprintf(w, "never seen:  %d\n", f.NeverSeen)
			fmt.Fprintf(w, "pending:     %s\n", plural(f.Pending, "command"))
			fmt.Fprintf(w, "waiting:     %s (never-seen devices; an external broker gets them at a sighting or a release)\n", plural(f.Waiting, "command"))
			_, err = fmt.Fprintf(w, "released:    %d (never-seen devices whose commands go out unseen)\n", f.Released)
			return err
		}),
	}
	addAPIFlags(c, o)
	return c
}

func newReleaseCmd() *cobra.Command {
	o := &apiOpts{}
	var all bool
	c := &cobra.Command{
		Use: "release --all", Short: "external broker: send the commands of every never-seen device now (e4c2 client release for one)", Args: cobra.NoArgs,
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, _ []string) error {
			if !all {
				return withHint(errors.New("release of every device needs --all"), "e4c2 client release CLIENT releases one")
			}
			res, err := c.ReleaseAll(cmd.Context())
			if err != nil {
				return err
			}
			if o.json {
				return o.printJSON(cmd, res)
			}
			return done(cmd, o, fmt.Sprintf("release: %s released, %s may go to the broker", plural(res.Released, "device"), plural(res.Commands, "command")),
				map[string]any{"released": res.Released, "commands": res.Commands})
		}),
	}
	c.Flags().BoolVar(&all, "all", false, "every registered device neither seen nor released")
	addAPIFlags(c, o)
	return c
}

func newResyncCmd() *cobra.Command {
	o := &apiOpts{}
	var all, full bool
	c := &cobra.Command{
		Use: "resync --all [--full]", Short: "queue what every device lacks (e4c2 client resync for one)", Args: cobra.NoArgs,
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, _ []string) error {
			if !all {
				return withHint(errors.New("resync of every client needs --all"), "e4c2 client resync CLIENT resyncs one")
			}
			res, err := c.ResyncAll(cmd.Context(), full)
			if err != nil {
				return err
			}
			if o.json {
				return o.printJSON(cmd, res)
			}
			return done(cmd, o, "resync: "+plural(res.Queued, "command")+" queued", map[string]any{"queued": res.Queued})
		}),
	}
	c.Flags().BoolVar(&all, "all", false, "every registered client")
	c.Flags().BoolVar(&full, "full", false, "resend every current key, whether the devices hold it or not")
	addAPIFlags(c, o)
	return c
}

func displayName(name, id string) string {
	if name != "" {
		return safeText(name, false)
	}
	return id
}

func printCount(cmd *cobra.Command, o *apiOpts, n int) error {
	if o.json {
		return o.printJSON(cmd, map[string]int{"count": n})
	}
	_, err := fmt.Fprintln(cmd.OutOrStdout(), n)
	return err
}

// printBatch prints per-client results; a batch with failures exits 1.
func printBatch(cmd *cobra.Command, o *apiOpts, res apiclient.BatchResult, verb string) error {
	if o.json {
		if err := o.printJSON(cmd, res); err != nil {
			return err
		}
	} else {
		t := newTable(cmd.OutOrStdout(), "CLIENT", "RESULT")
		for _, r := range res.Results {
			if r.OK {
				t.row(r.Client, "ok")
			} else if r.Error != nil {
				t.row(r.Client, r.Error.Message+" ("+r.Error.Code+")")
			}
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if res.Failed > 0 {
		return &exitError{err: fmt.Errorf("%s: %d of %d clients failed", verb, res.Failed, res.Failed+res.Succeeded), code: 1}
	}
	return nil
}

// ---- topic -----------------------------------------------------------------

func newTopicCmd() *cobra.Command {
	o := &apiOpts{}
	put := func(rotate bool) func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
		return func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			// Creation and rotation are two requests: a creation never
			// rotates an existing topic, a rotation (of a mistyped name)
			// never creates one.
			var res apiclient.TopicResult
			var err error
			if rotate {
				res, err = c.RotateTopic(cmd.Context(), args[0])
			} else {
				res, err = c.NewTopic(cmd.Context(), args[0])
			}
			if isCode(err, "topic_exists") {
				return withHint(err, "e4c2 topic rotate "+args[0]+" gives it a new key")
			}
			if err != nil {
				return err
			}
			if o.json {
				return o.printJSON(cmd, res)
			}
			if res.Rotated {
				fmt.Fprintf(cmd.OutOrStdout(), "topic %s key rotated (SetTopicKey queued for its clients)\n", res.Topic)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "topic %s created\n", res.Topic)
			}
			return nil
		}
	}
	add := &cobra.Command{Use: "add TOPIC", Short: "create a topic with a fresh random key (an existing topic is refused: see topic rotate)", Args: cobra.ExactArgs(1), RunE: runAPI(o, put(false))}
	rotate := &cobra.Command{Use: "rotate TOPIC", Short: "give a topic a new key (every attached device gets SetTopicKey, receivers first)", Args: cobra.ExactArgs(1), RunE: runAPI(o, put(true))}
	remove := &cobra.Command{
		Use: "remove TOPIC", Short: "remove a topic (every attached device gets RemoveTopic)", Args: cobra.ExactArgs(1),
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			if err := c.RemoveTopic(cmd.Context(), args[0]); err != nil {
				return err
			}
			return done(cmd, o, "topic "+args[0]+" removed", map[string]any{"topic": args[0]})
		}),
	}
	get := &cobra.Command{
		Use: "get TOPIC", Short: "show a topic", Args: cobra.ExactArgs(1),
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			tp, err := c.GetTopic(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if o.json {
				return o.printJSON(cmd, tp)
			}
			t := newTable(cmd.OutOrStdout(), topicHeader...)
			topicTable([]apiclient.Topic{tp})(t)
			return t.flush()
		}),
	}
	var lp pageFlags
	list := &cobra.Command{
		Use: "list", Short: "list topics", Args: cobra.NoArgs,
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, _ []string) error {
			items, next, err := collect(lp, func(cur string, n int) (apiclient.Page[apiclient.Topic], error) {
				return c.ListTopics(cmd.Context(), cur, n)
			})
			if err != nil {
				return err
			}
			return printPage(cmd, o, items, next, topicTable(items), topicHeader...)
		}),
	}
	addPageFlags(list, &lp)
	count := &cobra.Command{
		Use: "count", Short: "count topics", Args: cobra.NoArgs,
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, _ []string) error {
			n, err := c.CountTopics(cmd.Context())
			if err != nil {
				return err
			}
			return printCount(cmd, o, n)
		}),
	}
	var cp pageFlags
	clients := &cobra.Command{
		Use: "clients TOPIC", Short: "clients of a topic", Args: cobra.ExactArgs(1),
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			items, next, err := collect(cp, func(cur string, n int) (apiclient.Page[apiclient.ClientInfo], error) {
				return c.TopicClients(cmd.Context(), args[0], cur, n)
			})
			if err != nil {
				return err
			}
			return printPage(cmd, o, items, next, clientTable(items), clientHeader...)
		}),
	}
	addPageFlags(clients, &cp)
	return apiCmd("topic", "Manage topics and their keys", o, add, rotate, remove, get, list, count, clients)
}

// ---- attach / detach / batch ------------------------------------------------

func newAttachCmd() *cobra.Command {
	o := &apiOpts{}
	c := &cobra.Command{
		Use:   "attach CLIENT TOPIC | attach --batch TOPIC CLIENT...",
		Short: "give a device a topic key (it gets SetTopicKey); --batch attaches many devices",
		Args:  cobra.MinimumNArgs(2),
	}
	batch := c.Flags().Bool("batch", false, "first argument is the topic, the rest are clients (one request)")
	c.RunE = runAPI(o, func(cmd *cobra.Command, cl *apiclient.Client, args []string) error {
		if *batch {
			res, err := cl.BatchAttach(cmd.Context(), args[0], args[1:])
			if err != nil {
				return err
			}
			return printBatch(cmd, o, res, "attach")
		}
		if len(args) != 2 {
			return errors.New("attach takes CLIENT TOPIC (use --batch for many clients)")
		}
		if err := cl.Attach(cmd.Context(), args[0], args[1]); err != nil {
			return err
		}
		return done(cmd, o, fmt.Sprintf("client %s attached to %s (SetTopicKey queued)", args[0], args[1]), map[string]any{"client": args[0], "topic": args[1]})
	})
	addAPIFlags(c, o)
	return c
}

func newDetachCmd() *cobra.Command {
	o := &apiOpts{}
	c := &cobra.Command{
		Use: "detach CLIENT TOPIC", Short: "take a topic key from a device (it gets RemoveTopic)", Args: cobra.ExactArgs(2),
		RunE: runAPI(o, func(cmd *cobra.Command, cl *apiclient.Client, args []string) error {
			if err := cl.Detach(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			return done(cmd, o, fmt.Sprintf("client %s detached from %s (RemoveTopic queued)", args[0], args[1]), map[string]any{"client": args[0], "topic": args[1]})
		}),
	}
	addAPIFlags(c, o)
	return c
}

// ---- pubkey, c2key -----------------------------------------------------------

func newPubKeyCmd() *cobra.Command {
	o := &apiOpts{}
	send := &cobra.Command{
		Use: "send CLIENT SOURCE", Short: "[PK] give CLIENT the public key of SOURCE, so it can check SOURCE's messages (SetPubKey)", Args: cobra.ExactArgs(2),
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			if err := c.SendPubKey(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			return done(cmd, o, fmt.Sprintf("public key of %s sent to %s (SetPubKey queued)", args[1], args[0]), map[string]any{"client": args[0], "source": args[1]})
		}),
	}
	remove := &cobra.Command{
		Use: "remove CLIENT SOURCE", Short: "[PK] take SOURCE's public key from CLIENT (RemovePubKey)", Args: cobra.ExactArgs(2),
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			if err := c.RemovePubKey(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			return done(cmd, o, fmt.Sprintf("public key of %s removed from %s (RemovePubKey queued)", args[1], args[0]), map[string]any{"client": args[0], "source": args[1]})
		}),
	}
	reset := &cobra.Command{
		Use: "reset CLIENT", Short: "[PK] take every peer public key from CLIENT (ResetPubKeys)", Args: cobra.ExactArgs(1),
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			if err := c.ResetPubKeys(cmd.Context(), args[0]); err != nil {
				return err
			}
			return done(cmd, o, "public keys of "+args[0]+" reset (ResetPubKeys queued)", map[string]any{"client": args[0]})
		}),
	}
	return apiCmd("pubkey", "Distribute client public keys [PK mode]", o, send, remove, reset)
}

func newC2KeyCmd() *cobra.Command {
	o := &apiOpts{}
	rotate := &cobra.Command{
		Use: "rotate", Short: "[PK] new C2 key pair (every device gets SetC2Key, protected with the old pair)", Args: cobra.NoArgs,
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, _ []string) error {
			if err := c.NewC2Key(cmd.Context()); err != nil {
				return err
			}
			return done(cmd, o, "C2 key rotated (SetC2Key queued for every client)", nil)
		}),
	}
	var out string
	var force bool
	get := &cobra.Command{
		Use: "get [--out FILE]", Short: "print the C2 public key (or write it to FILE for e4c2 device join --c2-pubkey-file)", Args: cobra.NoArgs,
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, _ []string) error {
			k, err := c.C2PublicKey(cmd.Context())
			if err != nil {
				return err
			}
			if out != "" {
				pub, err := hex.DecodeString(k.PublicKey)
				if err != nil {
					return fmt.Errorf("server sent a malformed public key: %w", err)
				}
				if err := writeKeyFile(out, pub, 0o644, force); err != nil {
					return err
				}
				// On stderr: stdout stays the key (or the JSON) alone.
				fmt.Fprintf(cmd.ErrOrStderr(), "e4c2: C2 public key (version %d) written to %s\n", k.KeyVersion, out)
			}
			if o.json {
				return o.printJSON(cmd, k)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), k.PublicKey)
			return err
		}),
	}
	get.Flags().StringVar(&out, "out", "", "also write the key (hex) to this file")
	get.Flags().BoolVar(&force, "force", false, "overwrite --out")
	return apiCmd("c2key", "The C2 key pair [PK mode]", o, get, rotate)
}

// ---- tokens ----------------------------------------------------------------

func newTokenCmd() *cobra.Command {
	o := &apiOpts{}
	var role, out string
	var force bool
	create := &cobra.Command{
		Use: "create NAME", Short: "create an API token (admin, operator or reader); the secret is shown once", Args: cobra.ExactArgs(1),
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			if out != "" {
				if err := checkOutPath(out, force); err != nil {
					return err
				}
			}
			t, err := c.CreateToken(cmd.Context(), args[0], role)
			if err != nil {
				return err
			}
			if out != "" {
				if err := writeSecretFile(out, t.Secret, force); err != nil {
					return err
				}
				t.Secret = ""
			}
			if o.json {
				return printJSON(cmd.OutOrStdout(), t)
			}
			if out != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "token %s (%s) written to %s\n", safeText(t.Name, false), t.Role, out)
				return nil
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "token %s (%s) created; its secret is shown once:\n", safeText(t.Name, false), t.Role)
			fmt.Fprintln(cmd.OutOrStdout(), t.Secret)
			return nil
		}),
	}
	create.Flags().StringVar(&role, "role", "reader", "role: admin, operator or reader")
	create.Flags().StringVar(&out, "out", "", "write the secret to this file (0600) instead of stdout")
	create.Flags().BoolVar(&force, "force", false, "overwrite --out")
	addOfflineTokenCreate(create, &role, &out, &force, func() bool { return o.json })
	list := &cobra.Command{
		Use: "list", Short: "list API tokens (never their secrets)", Args: cobra.NoArgs,
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, _ []string) error {
			ts, err := c.ListTokens(cmd.Context())
			if err != nil {
				return err
			}
			return printPage(cmd, o, ts, "", func(t *table) {
				for _, x := range ts {
					t.row(x.Name, x.Role, x.CreatedBy, x.CreatedAt)
				}
			}, "NAME", "ROLE", "CREATED-BY", "CREATED")
		}),
	}
	revoke := &cobra.Command{
		Use: "revoke NAME", Short: "revoke an API token", Args: cobra.ExactArgs(1),
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			if err := c.RevokeToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			return done(cmd, o, "token "+args[0]+" revoked", map[string]any{"token": args[0]})
		}),
	}
	return apiCmd("token", "Manage API tokens (admin)", o, create, list, revoke)
}

// writeSecretFile writes a token secret to a 0600 file.
func writeSecretFile(path, secret string, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		if os.IsExist(err) {
			return withHint(fmt.Errorf("%s already exists", path), "pass --force to overwrite it")
		}
		return fmt.Errorf("token file: %w", err)
	}
	// With --force an existing file keeps its mode through O_TRUNC; a
	// secret must not land in a file others can read.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("token file: %w", err)
	}
	if _, err := io.WriteString(f, secret+"\n"); err != nil {
		f.Close()
		return fmt.Errorf("token file: %w", err)
	}
	return f.Close()
}

// ---- events, audit, pending ------------------------------------------------

func newEventsCmd() *cobra.Command {
	o := &apiOpts{}
	var from uint64
	var count int
	c := &cobra.Command{
		Use:   "events",
		Short: "follow the event stream (SSE); reconnects and resumes after the last event seen",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client(apiclient.WithStreamDropHandler(func(err error) {
				fmt.Fprintf(cmd.ErrOrStderr(), "e4c2: event stream interrupted (%v); reconnecting\n", err)
			}))
			if err != nil {
				return err
			}
			n := 0
			w := cmd.OutOrStdout()
			err = c.Events(cmd.Context(), from, func(ev apiclient.Event) error {
				if o.json {
					if err := printCompactJSON(w, ev); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", ev.Position, ev.Time.UTC().Format(time.RFC3339), cell(ev.Type), cell(ev.Actor), cell(ev.Stream))
				}
				n++
				if count > 0 && n >= count {
					return apiclient.ErrStop
				}
				return nil
			})
			if errors.Is(err, context.Canceled) {
				return nil // interrupted by the user
			}
			return o.apiError(err)
		},
	}
	c.Flags().Uint64Var(&from, "from", 0, "first global position to show (default: the start of the log)")
	c.Flags().IntVar(&count, "count", 0, "stop after this many events (0: follow until interrupted)")
	addAPIFlags(c, o)
	return c
}

// printCompactJSON writes v as one JSON line, & < > as written.
func printCompactJSON(w io.Writer, v any) error {
	b, err := jsonMarshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", unescapeHTML(b))
	return err
}

func newPendingCmd() *cobra.Command {
	o := &apiOpts{}
	var client string
	var p pageFlags
	c := &cobra.Command{
		Use: "pending", Short: "commands queued and not yet settled (accepted by a broker, confirmed by the device's session, or failed)", Args: cobra.NoArgs,
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, _ []string) error {
			items, next, err := collect(p, func(cur string, n int) (apiclient.Page[apiclient.Delivery], error) {
				return c.Pending(cmd.Context(), client, cur, n)
			})
			if err != nil {
				return err
			}
			return printPage(cmd, o, items, next, func(t *table) {
				for _, d := range items {
					t.row(d.Client, d.Command, d.Topic, d.QueuedAt, d.KeyVersion)
				}
			}, "CLIENT", "COMMAND", "TOPIC", "QUEUED", "KEY-VERSION")
		}),
	}
	c.Flags().StringVar(&client, "client", "", "only this client")
	addPageFlags(c, &p)
	addAPIFlags(c, o)
	return c
}

// ---- protect / unprotect / export-key --------------------------------------

// argOrStdin returns args[i] or, when absent or "-", all of stdin.
func argOrStdin(cmd *cobra.Command, args []string, i int) ([]byte, error) {
	if len(args) > i && args[i] != "-" {
		return []byte(args[i]), nil
	}
	b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read stdin: %w", err)
	}
	return b, nil
}

func newProtectCmd() *cobra.Command {
	o := &apiOpts{}
	c := &cobra.Command{
		Use: "protect TOPIC [MESSAGE|-]", Short: "protect a message with the topic key; prints it base64", Args: cobra.RangeArgs(1, 2),
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			msg, err := argOrStdin(cmd, args, 1)
			if err != nil {
				return err
			}
			out, err := c.Protect(cmd.Context(), args[0], msg)
			if err != nil {
				return err
			}
			if o.json {
				return o.printJSON(cmd, map[string][]byte{"protected": out})
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), base64.StdEncoding.EncodeToString(out))
			return err
		}),
	}
	addAPIFlags(c, o)
	return c
}

func newUnprotectCmd() *cobra.Command {
	o := &apiOpts{}
	c := &cobra.Command{
		Use: "unprotect TOPIC [BASE64|-]", Short: "open a base64 protected message with the topic key", Args: cobra.RangeArgs(1, 2),
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			in, err := argOrStdin(cmd, args, 1)
			if err != nil {
				return err
			}
			raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(in)))
			if err != nil {
				return fmt.Errorf("protected message is not base64: %w", err)
			}
			out, err := c.Unprotect(cmd.Context(), args[0], raw)
			if err != nil {
				return err
			}
			if o.json {
				return o.printJSON(cmd, map[string][]byte{"payload": out})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", out)
			return err
		}),
	}
	addAPIFlags(c, o)
	return c
}

func newExportKeyCmd() *cobra.Command {
	o := &apiOpts{}
	var out string
	var force bool
	c := &cobra.Command{
		Use:   "export-key client|topic NAME",
		Short: "export a client's or topic's key (admin; the only command that shows key material)",
		Args:  cobra.ExactArgs(2),
		RunE: runAPI(o, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			if out != "" {
				if err := checkOutPath(out, force); err != nil {
					return err
				}
			}
			var k apiclient.ExportedKey
			var err error
			switch args[0] {
			case "client":
				k, err = c.ExportClientKey(cmd.Context(), args[1])
			case "topic":
				k, err = c.ExportTopicKey(cmd.Context(), args[1])
			default:
				return fmt.Errorf("export-key: first argument must be client or topic, not %q", args[0])
			}
			if err != nil {
				return err
			}
			if out != "" {
				key, derr := hex.DecodeString(k.Key)
				if derr != nil {
					return fmt.Errorf("export-key: server sent a malformed key")
				}
				defer clear(key)
				if err := writeKeyFile(out, key, 0o600, force); err != nil {
					return err
				}
				return done(cmd, o, "key written to "+out, map[string]any{"file": out})
			}
			if o.json {
				return o.printJSON(cmd, k)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), k.Key)
			return err
		}),
	}
	c.Flags().StringVar(&out, "out", "", "write the key to this file (0600) instead of stdout")
	c.Flags().BoolVar(&force, "force", false, "overwrite --out")
	addAPIFlags(c, o)
	return c
}
