package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/e4c2/e4c2/transport/http/apiclient"
)

// Environment variables of the API client commands. The token is read from
// the environment or a file, never from a flag value: flags show in process
// listings.
const (
	envServer    = "E4C2_SERVER"
	envToken     = "E4C2_TOKEN"
	defaultServe = "http://127.0.0.1:8080"
)

// apiOpts are the flags shared by every command that talks to the API.
type apiOpts struct {
	server    string
	tokenFile string
	json      bool
	// answer is the body of the last successful JSON answer and answers
	// their number: --json prints the answer itself when the command got
	// exactly one.
	answer  []byte
	answers int
}

// addAPIFlags registers --server, --token-file and --json on cmd and its
// subcommands.
func addAPIFlags(cmd *cobra.Command, o *apiOpts) {
	f := cmd.PersistentFlags()
	f.StringVar(&o.server, "server", "", "API URL (default $"+envServer+" or "+defaultServe+")")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the API token (default: $"+envToken+")")
	f.BoolVar(&o.json, "json", false, "print JSON instead of a table")
}

func (o *apiOpts) serverURL() string {
	if o.server != "" {
		return o.server
	}
	if v := os.Getenv(envServer); v != "" {
		return v
	}
	return defaultServe
}

// token reads the API token from --token-file or $E4C2_TOKEN.
func (o *apiOpts) token() (string, error) {
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return "", fmt.Errorf("token file: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", fmt.Errorf("token file %s is empty", o.tokenFile)
		}
		return t, nil
	}
	if t := strings.TrimSpace(os.Getenv(envToken)); t != "" {
		return t, nil
	}
	return "", withHint(errors.New("no API token"),
		"set "+envToken+" to the admin token printed by e4c2 serve, or pass --token-file")
}

// client builds the API client from the flags and environment.
func (o *apiOpts) client(opts ...apiclient.Option) (*apiclient.Client, error) {
	tok, err := o.token()
	if err != nil {
		return nil, err
	}
	opts = append(opts, apiclient.WithAnswerHook(func(b []byte) { o.answer, o.answers = b, o.answers+1 }))
	c, err := apiclient.New(o.serverURL(), tok, opts...)
	if err != nil {
		return nil, withHint(err, "set --server or "+envServer+" to the URL e4c2 serve prints")
	}
	return c, nil
}

// apiError turns an API client error into the CLI's one-line error with a
// hint where one helps.
func (o *apiOpts) apiError(err error) error {
	if err == nil {
		return nil
	}
	var ae *apiclient.Error
	if errors.As(err, &ae) {
		switch {
		case ae.Status == http.StatusUnauthorized:
			return withHint(err, "set "+envToken+" to the admin token printed by e4c2 serve (or a token from e4c2 token create)")
		case ae.Code == "crypto_helpers_disabled":
			return withHint(err, "the server runs with --disable-crypto-helpers: protect and unprotect on a device or with the library")
		case ae.Status == http.StatusForbidden:
			return withHint(err, "this token's role does not allow it: use an operator or admin token")
		case ae.Code == "unknown_client":
			return withHint(err, "e4c2 client list shows the known clients (names or hex ids)")
		case ae.Code == "unknown_topic":
			return withHint(err, "e4c2 topic list shows the known topics; e4c2 topic add creates one")
		case ae.Code == "unsupported_in_mode":
			return withHint(err, "this operation belongs to the other key mode (e4c2 serve --mode sk|pk)")
		case ae.Code == "no_c2_key":
			return withHint(err, "the server runs in SK mode or has no C2 key yet")
		case ae.Status == http.StatusTooManyRequests:
			return withHint(err, "slow down and retry")
		case ae.Code == "token_name_revoked":
			return withHint(err, "token names are never reused (the audit names tokens): choose another name")
		case ae.Code == "last_admin_token":
			return withHint(err, "create another admin token first (e4c2 token create NAME --role admin); with none left, stop the server and run e4c2 token create --data-dir DIR NAME --role admin")
		case ae.Code == "insufficient_storage":
			return withHint(err, "the server's store disk is full: free space on it, then retry")
		}
		return err
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) {
		return withHint(err, "is e4c2 serve running at "+o.serverURL()+"? set --server or "+envServer)
	}
	return err
}

// printJSON writes v as indented JSON. HTML is not escaped: the output is
// for terminals and jq, where a rule's "a && b" must read as written.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// printJSON is --json output: the API's answer as the server sent it when
// the command got exactly one, so that scripts see every field the API
// has (not only those the CLI knows); else v (several pages joined by
// --all, or a confirmation for an answer without a body).
func (o *apiOpts) printJSON(cmd *cobra.Command, v any) error {
	if o.answers == 1 {
		return printRawJSON(cmd.OutOrStdout(), o.answer)
	}
	return printJSON(cmd.OutOrStdout(), v)
}

// table writes rows under a header with aligned columns.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(toAny(header)...)
	return t
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func (t *table) row(cells ...any) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(t.tw, "\t")
		}
		fmt.Fprint(t.tw, cell(c))
	}
	fmt.Fprint(t.tw, "\n")
}

func (t *table) flush() error { return t.tw.Flush() }

// cell renders one table cell: empty strings and zero times as "-",
// names from the server escaped (safeText).
func cell(v any) string {
	switch x := v.(type) {
	case string:
		if x == "" {
			return "-"
		}
		return safeText(x, false)
	case time.Time:
		if x.IsZero() {
			return "-"
		}
		return x.UTC().Format(time.RFC3339)
	default:
		return fmt.Sprint(x)
	}
}

// pageFlags are --limit, --cursor and --all of list commands.
type pageFlags struct {
	limit  int
	cursor string
	all    bool
}

func addPageFlags(cmd *cobra.Command, p *pageFlags) {
	cmd.Flags().IntVar(&p.limit, "limit", 0, "page size (0: server default)")
	cmd.Flags().StringVar(&p.cursor, "cursor", "", "continue from the cursor a previous page printed")
	cmd.Flags().BoolVar(&p.all, "all", false, "follow every page")
}

// collect fetches one page, or every page with --all, and returns the
// items and the next cursor ("" when done).
func collect[T any](p pageFlags, fetch func(cursor string, limit int) (apiclient.Page[T], error)) ([]T, string, error) {
	var items []T
	cursor := p.cursor
	for {
		pg, err := fetch(cursor, p.limit)
		if err != nil {
			return nil, "", err
		}
		items = append(items, pg.Items...)
		if !p.all || pg.Next == "" {
			return items, pg.Next, nil
		}
		cursor = pg.Next
	}
}

// printPage prints a list as JSON ({items, next}) or as a table, with the
// next cursor on stderr.
func printPage[T any](cmd *cobra.Command, o *apiOpts, items []T, next string, tab func(*table), header ...string) error {
	if items == nil {
		items = []T{}
	}
	if o.json {
		return o.printJSON(cmd, apiclient.Page[T]{Items: items, Next: next})
	}
	t := newTable(cmd.OutOrStdout(), header...)
	tab(t)
	if err := t.flush(); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "e4c2: more results: --cursor %s (or --all)\n", next)
	}
	return nil
}

// isCode reports whether err is an API error with the given stable code.
func isCode(err error, code string) bool {
	var ae *apiclient.Error
	return errors.As(err, &ae) && ae.Code == code
}
