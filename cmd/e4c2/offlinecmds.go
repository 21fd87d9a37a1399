package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/jetstream"
	"github.com/e4c2/e4c2/eventstore/sealing"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/eventcodec"
	"github.com/e4c2/e4c2/internal/eventreg"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/transport/http/apiclient"
)

// allItems is the page size that returns every item of a read model.
const allItems = math.MaxInt32

// ---- replay ------------------------------------------------------------------

// replayState is what replay prints: public state only, never a key.
type replayState struct {
	Position uint64         `json:"position"`
	AsOf     string         `json:"as_of,omitempty"`
	Clients  []replayClient `json:"clients"`
	Topics   []replayTopic  `json:"topics"`
	Links    []replayLink   `json:"links"`
	C2Key    *replayC2      `json:"c2_key,omitempty"`
	Tokens   []replayToken  `json:"tokens"`
	Pending  int            `json:"pending_commands"`
}

type replayClient struct {
	Name       string `json:"name,omitempty"`
	ID         string `json:"id"`
	Role       string `json:"role"`
	KeyVersion uint64 `json:"key_version"`
	Topics     int    `json:"topics"`
	PublicKey  string `json:"public_key,omitempty"`
}

type replayTopic struct {
	Name       string `json:"name"`
	Hash       string `json:"hash"`
	KeyVersion uint64 `json:"key_version"`
	Clients    int    `json:"clients"`
}

type replayLink struct {
	Client string `json:"client"`
	Topic  string `json:"topic"`
}

type replayC2 struct {
	KeyVersion uint64 `json:"key_version"`
	PublicKey  string `json:"public_key"`
}

type replayToken struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

func newReplayCmd() *cobra.Command {
	o := &storeOpts{}
	var asOf, c2Out string
	var asJSON, force bool
	c := &cobra.Command{
		Use:   "replay",
		Short: "rebuild the state from the log (server stopped) and print it; --as-of a position or time",
		Long: `Replay reads the event log from the start into fresh projections and prints
the resulting state: clients, topics, links, the C2 public key, API tokens and
the number of undelivered commands. Keys stay sealed: nothing secret is
printed, and the master key is not needed.

--as-of takes a global position (e.g. 42), an RFC 3339 time or a duration
ago (e.g. 2h).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pos, t, err := parsePointInTime(asOf, time.Now())
			if err != nil {
				return fmt.Errorf("--as-of: %w", err)
			}
			return withStore(cmd, o, func(ctx context.Context, _ config.Config, st eventstore.Store) error {
				// A replay of an altered log would present its state as
				// the C2's: the chains must verify first.
				if _, err := requireIntactChain(ctx, st); err != nil {
					return err
				}
				ks := projections.NewKeyState()
				last, err := projections.Rebuild(ctx, decodingStore{st}, projections.AsOf{Position: pos, Time: t}, ks)
				if err != nil {
					return fmt.Errorf("replay: %w", err)
				}
				rs := buildReplayState(ks, last)
				rs.AsOf = asOf
				if c2Out != "" {
					// PK devices need the C2 public key to join.
					c2 := ks.C2()
					if !c2.Exists {
						return errors.New("the log holds no C2 key (SK mode?)")
					}
					if err := writeKeyFile(c2Out, c2.PublicKey, 0o644, force); err != nil {
						return err
					}
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), rs)
				}
				return printReplay(cmd.OutOrStdout(), rs)
			})
		},
	}
	c.Flags().StringVar(&asOf, "as-of", "", "replay up to this global position, RFC 3339 time or duration ago")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().StringVar(&c2Out, "c2-pubkey-out", "", "PK: also write the C2 public key to this file (for e4c2 device join --c2-pubkey-file)")
	c.Flags().BoolVar(&force, "force", false, "overwrite --c2-pubkey-out")
	// Offline replay never starts from a snapshot (it has no master key
	// to check one with): it always replays the whole log. The flag makes
	// that explicit in scripts, matching serve --from-scratch.
	c.Flags().Bool("from-scratch", true, "replay the whole log from position 1, ignoring key-state snapshots (always the case offline)")
	addStoreFlags(c, o)
	o.readOnly = true
	return c
}

func buildReplayState(ks *projections.KeyState, last uint64) replayState {
	rs := replayState{Position: last, Clients: []replayClient{}, Topics: []replayTopic{}, Links: []replayLink{}, Tokens: []replayToken{}}
	clients, _ := ks.Clients(0, allItems)
	for _, c := range clients {
		rc := replayClient{Name: c.Name, ID: c.ID.String(), Role: c.Role.String(), KeyVersion: c.KeyVersion, Topics: c.Topics}
		if len(c.PublicKey) > 0 {
			rc.PublicKey = hex.EncodeToString(c.PublicKey)
		}
		rs.Clients = append(rs.Clients, rc)
		topics, _, _ := ks.ClientTopics(c.ID, 0, allItems)
		for _, t := range topics {
			rs.Links = append(rs.Links, replayLink{Client: displayName(c.Name, c.ID.String()), Topic: t.Name})
		}
	}
	topics, _ := ks.Topics(0, allItems)
	for _, t := range topics {
		rs.Topics = append(rs.Topics, replayTopic{Name: t.Name, Hash: t.Hash.String(), KeyVersion: t.KeyVersion, Clients: t.Members})
	}
	if c2 := ks.C2(); c2.Exists {
		rs.C2Key = &replayC2{KeyVersion: c2.KeyVersion, PublicKey: hex.EncodeToString(c2.PublicKey)}
	}
	for _, t := range ks.Tokens() {
		rs.Tokens = append(rs.Tokens, replayToken{Name: t.Name, Role: t.Role.String()})
	}
	rs.Pending = ks.PendingCount()
	return rs
}

func printReplay(w io.Writer, rs replayState) error {
	fmt.Fprintf(w, "state at position %d\n\nclients (%d)\n", rs.Position, len(rs.Clients))
	t := newTable(w, "NAME", "ID", "ROLE", "KEY-VERSION", "TOPICS")
	for _, c := range rs.Clients {
		t.row(c.Name, c.ID, c.Role, c.KeyVersion, c.Topics)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ntopics (%d)\n", len(rs.Topics))
	t = newTable(w, "TOPIC", "HASH", "KEY-VERSION", "CLIENTS")
	for _, x := range rs.Topics {
		t.row(x.Name, x.Hash, x.KeyVersion, x.Clients)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nlinks (%d)\n", len(rs.Links))
	t = newTable(w, "CLIENT", "TOPIC")
	for _, l := range rs.Links {
		t.row(l.Client, l.Topic)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if rs.C2Key != nil {
		fmt.Fprintf(w, "\nc2 key: version %d, public key %s\n", rs.C2Key.KeyVersion, rs.C2Key.PublicKey)
	}
	fmt.Fprintf(w, "\ntokens (%d)\n", len(rs.Tokens))
	t = newTable(w, "NAME", "ROLE")
	for _, x := range rs.Tokens {
		t.row(x.Name, x.Role)
	}
	if err := t.flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\npending commands: %d\n", rs.Pending)
	return err
}

// ---- audit (API or offline) ---------------------------------------------------

// auditRow is the common shape of an audit line, online or offline.
type auditRow struct {
	Position      uint64    `json:"position"`
	Time          time.Time `json:"time"`
	Type          string    `json:"type"`
	Actor         string    `json:"actor"`
	Client        string    `json:"client,omitempty"`
	Topic         string    `json:"topic,omitempty"`
	CorrelationID string    `json:"correlation_id,omitempty"`
	Summary       string    `json:"summary,omitempty"`
	KeyVersion    uint64    `json:"key_version,omitempty"`
	Command       string    `json:"command,omitempty"`
}

// printAudit prints audit rows: --json as the API answered (o.printJSON)
// or, offline, as the same shape; else a table whose KEY-VERSION column is
// the key version each operation introduced or used ("-": none).
func printAudit(cmd *cobra.Command, o *apiOpts, rows []auditRow, next string) error {
	if rows == nil {
		rows = []auditRow{}
	}
	if o.json {
		return o.printJSON(cmd, struct {
			Items []auditRow `json:"items"`
			Next  string     `json:"next,omitempty"`
		}{rows, next})
	}
	t := newTable(cmd.OutOrStdout(), "POS", "TIME", "ACTOR", "TYPE", "CLIENT", "TOPIC", "KEY-VERSION", "SUMMARY")
	for _, r := range rows {
		kv := any("-")
		if r.KeyVersion > 0 {
			kv = r.KeyVersion
		}
		t.row(r.Position, r.Time, r.Actor, r.Type, r.Client, r.Topic, kv, r.Summary)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "e4c2: more results: --cursor %s (or --all)\n", next)
	}
	return nil
}

// offlineAudit replays the log into the audit trail and filters it.
func offlineAudit(ctx context.Context, st eventstore.Store, client, topic, actor string, since, until time.Time) ([]auditRow, error) {
	ks := projections.NewKeyState()
	au := projections.NewAudit(0)
	if _, err := projections.Rebuild(ctx, decodingStore{st}, projections.AsOf{}, ks, au); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	q := projections.AuditQuery{Actor: actor, Since: since, Until: until, Limit: allItems}
	if client != "" {
		id := resolveClientID(client)
		q.Client = &id
	}
	if topic != "" {
		h := domain.TopicHash(topic)
		q.Topic = &h
	}
	entries, _ := au.Query(q)
	// Names of every client ever registered, removed ones included (the
	// snapshot keeps them), so the trail of a removed client still reads.
	names := map[string]string{}
	for _, c := range ks.Snapshot().Clients {
		if c.Name != "" {
			names[c.ID] = c.Name
		}
	}
	rows := make([]auditRow, 0, len(entries))
	for _, e := range entries {
		r := auditRow{Position: e.Position, Time: e.Time, Type: e.Type, Actor: e.Actor, CorrelationID: e.CorrelationID, Topic: e.TopicName,
			KeyVersion: e.KeyVersion, Command: e.Command}
		var zero domain.ID
		if e.Client != zero {
			r.Client = e.Client.String()
			if n, ok := names[r.Client]; ok {
				r.Client = n
			}
		}
		r.Summary = auditSummary(e)
		rows = append(rows, r)
	}
	return rows, nil
}

// resolveClientID accepts a name or a 32-character hex id.
func resolveClientID(ref string) domain.ID {
	if len(ref) == 2*len(domain.ID{}) {
		if id, err := domain.ParseID(ref); err == nil {
			return id
		}
	}
	return domain.ClientID(ref)
}

func auditSummary(e projections.AuditEntry) string {
	s := ""
	add := func(v string) {
		if v == "" {
			return
		}
		if s != "" {
			s += " "
		}
		s += v
	}
	add(e.Command) // the key version has its own column
	if len(e.Recipients) > 0 {
		add(fmt.Sprintf("recipients=%d", len(e.Recipients)))
	}
	add(e.Detail)
	return s
}

func newAuditCmd() *cobra.Command {
	o := &apiOpts{}
	so := &storeOpts{}
	var offline bool
	var client, topic, actor, since, until string
	var p pageFlags
	c := &cobra.Command{
		Use:   "audit",
		Short: "print the audit trail (who did what, when, to which client or topic), from the API or --offline from the store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			from, err := parseTime(since, now)
			if err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			to, err := parseTime(until, now)
			if err != nil {
				return fmt.Errorf("--until: %w", err)
			}
			if offline {
				return withStore(cmd, so, func(ctx context.Context, _ config.Config, st eventstore.Store) error {
					if _, err := requireIntactChain(ctx, st); err != nil {
						return err
					}
					rows, err := offlineAudit(ctx, st, client, topic, actor, from, to)
					if err != nil {
						return err
					}
					return printAudit(cmd, o, rows, "")
				})
			}
			for _, name := range []string{"data-dir", "store", "config", "master-key-file", "master-key-env", "master-passphrase-file"} {
				if cmd.Flags().Changed(name) {
					return withHint(fmt.Errorf("--%s needs --offline", name), "add --offline to read the store directly (server stopped)")
				}
			}
			ac, err := o.client()
			if err != nil {
				return err
			}
			q := apiclient.AuditQuery{Client: client, Topic: topic, Actor: actor, From: from, To: to}
			entries, next, err := collect(p, func(cur string, n int) (apiclient.Page[apiclient.AuditEntry], error) {
				q.Cursor, q.Limit = cur, n
				return ac.Audit(cmd.Context(), q)
			})
			if err != nil {
				return o.apiError(err)
			}
			rows := make([]auditRow, len(entries))
			for i, e := range entries {
				rows[i] = auditRow{Position: e.Position, Time: e.Time, Type: e.Type, Actor: e.Actor, Client: e.Client,
					Topic: e.Topic, CorrelationID: e.CorrelationID, Summary: e.Summary, KeyVersion: e.KeyVersion, Command: e.Command}
			}
			return printAudit(cmd, o, rows, next)
		},
	}
	f := c.Flags()
	f.BoolVar(&offline, "offline", false, "read the store directly instead of the API (server stopped)")
	f.StringVar(&client, "client", "", "only entries naming this client (name or hex id)")
	f.StringVar(&topic, "topic", "", "only entries naming this topic")
	f.StringVar(&actor, "actor", "", "only entries by this actor (e.g. token:admin)")
	f.StringVar(&since, "since", "", "from this RFC 3339 time or duration ago (inclusive)")
	f.StringVar(&until, "until", "", "until this RFC 3339 time or duration ago (exclusive)")
	addPageFlags(c, &p)
	addAPIFlags(c, o)
	addStoreFlags(c, so)
	so.readOnly = true
	return c
}

// ---- verify ------------------------------------------------------------------

func newVerifyCmd() *cobra.Command {
	o := &storeOpts{}
	var quiet, replaySnaps bool
	c := &cobra.Command{
		Use:   "verify",
		Short: "check the log's hash chains and that every sealed key opens with the master key (server stopped)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, o, func(ctx context.Context, cfg config.Config, st eventstore.Store) error {
				// Every page of the file first: a damaged page is reported
				// as such, not as a crash of the library.
				if fc, ok := st.(interface{ CheckFile(context.Context) error }); ok {
					if err := fc.CheckFile(ctx); err != nil {
						return err
					}
				}
				var bar *progressbar.ProgressBar
				if !quiet {
					bar = newBar(cmd.ErrOrStderr(), -1, "verify chains")
				}
				rep, err := eventstore.Verify(ctx, st, func(n uint64) {
					if bar != nil {
						_ = bar.Set64(int64(n))
					}
				})
				finishBar(bar)
				if err != nil {
					var ce *eventstore.ChainError
					if errors.As(err, &ce) {
						return chainError(ce)
					}
					return fmt.Errorf("verify: %w", err)
				}
				kr, err := openKeyringOffline(ctx, cfg, st)
				if err != nil {
					return err
				}
				defer kr.Close()
				sealed, err := verifySealed(ctx, st, kr)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "ok: %d events in %d streams, hash chains intact; %d sealed keys open with the master key\n",
					rep.Records, rep.Streams, sealed)
				return verifySnapshots(ctx, cmd.OutOrStdout(), cfg, st, kr, replaySnaps)
			})
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	c.Flags().BoolVar(&replaySnaps, "snapshots", false, "also compare each key-state snapshot with a replay of the log up to its position")
	addStoreFlags(c, o)
	// Verify changes nothing: no rebuilt index or head is written, so it
	// works on an immutable copy and a full disk and keeps the evidence.
	o.readOnly = true
	return c
}

// verifySnapshots checks the key-state snapshots of the data directory as
// a start would use them (sealed digest, position within the log) and,
// with replay, against a replay of the log. A snapshot is a cache: one
// that fails is ignored by a start (which replays more of the log), but
// verify reports it and fails, since it means a damaged or planted file or
// a projection bug.
func verifySnapshots(ctx context.Context, w io.Writer, cfg config.Config, st eventstore.Store, kr sealing.Sealer, replay bool) error {
	sd := projections.SnapshotDir{Dir: filepath.Join(cfg.DataDir, "snapshots"), Sealer: kr}
	checks, err := sd.Check(ctx, st, replay)
	if err != nil {
		return fmt.Errorf("check snapshots: %w", err)
	}
	var bad error
	for _, c := range checks {
		name := filepath.Base(c.Path)
		switch {
		case c.Err != nil:
			fmt.Fprintf(w, "snapshot %s: FAILED: %v\n", name, c.Err)
			if bad == nil {
				bad = withHint(fmt.Errorf("snapshot %s: %w", name, c.Err),
					"a snapshot is a cache: a start ignores it and replays the log; delete it, or find out who wrote it")
			}
		case c.Replayed:
			fmt.Fprintf(w, "snapshot %s: position %d, sealed digest ok, equals a replay of the log\n", name, c.Position)
		default:
			fmt.Fprintf(w, "snapshot %s: position %d, sealed digest ok\n", name, c.Position)
		}
	}
	return bad
}

// verifySealed decodes every record and opens every sealed key it holds
// with the keyring. It returns how many keys it opened; the clear keys are
// wiped at once and never printed.
func verifySealed(ctx context.Context, st eventstore.Store, kr sealing.Sealer) (int, error) {
	n := 0
	err := eventreg.CheckAll(ctx, st, func(r *eventstore.Record, decoded any) error {
		ev, ok := decoded.(domain.Event)
		if !ok {
			return nil // not a domain event: it holds no sealed key
		}
		sec, ok := domain.SecretOf(ev)
		if !ok || sec.IsZero() {
			return nil
		}
		k, err := eventcodec.OpenSecret(kr, sec, r.Stream, r.Version, r.Type)
		if err != nil {
			return withHint(fmt.Errorf("sealed key at position %d (%s %s v%d) does not open: %w", r.Position, r.Type, r.Stream, r.Version, err),
				"the master key or keyring does not match this log, or the record was altered")
		}
		clear(k)
		n++
		return nil
	})
	return n, err
}

// ---- export / import -----------------------------------------------------------

func newExportCmd() *cobra.Command {
	o := &storeOpts{}
	var to string
	var quiet, acceptBroken bool
	c := &cobra.Command{
		Use:   "export --to FILE|esdb://...",
		Short: "copy the log and its keyring to another store (a new .db file or EventStoreDB), server stopped",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return errors.New("--to is required")
			}
			return withStore(cmd, o, func(ctx context.Context, cfg config.Config, src eventstore.Store) error {
				n, err := copyLog(ctx, cmd.ErrOrStderr(), src, storeLocation(cfg), to, quiet, acceptBroken, "export")
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "exported %d events to %s; it opens with the same master key\n", n, config.RedactStoreURL(to))
				return nil
			})
		},
	}
	c.Flags().StringVar(&to, "to", "", "destination: a new embedded store file, an esdb:// URL or a nats:// URL")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	c.Flags().BoolVar(&acceptBroken, "accept-broken", false, acceptBrokenUsage)
	addStoreFlags(c, o)
	o.readOnly = true
	return c
}

func newImportCmd() *cobra.Command {
	o := &storeOpts{}
	var from string
	var quiet, acceptBroken bool
	c := &cobra.Command{
		Use:   "import --from FILE|esdb://...",
		Short: "copy a log and its keyring into the configured (empty) store, server stopped",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return errors.New("--from is required")
			}
			cfg, err := o.load(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			src, err := openStoreMode(ctx, from, true, true)
			if err != nil {
				return err
			}
			defer src.Close()
			dst := storeLocation(cfg)
			if !isESDB(dst) && !jetstream.IsURL(dst) {
				if err := mkdirFor(dst); err != nil {
					return err
				}
			}
			n, err := copyLog(ctx, cmd.ErrOrStderr(), src, from, dst, quiet, acceptBroken, "import")
			if err != nil {
				return storeError(from, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %d events into %s; start the server with the source's master key (%s)\n", n, config.RedactStoreURL(dst), cfg.MasterKeyPath())
			return nil
		},
	}
	c.Flags().StringVar(&from, "from", "", "source: an embedded store file, an esdb:// URL or a nats:// URL")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	c.Flags().BoolVar(&acceptBroken, "accept-broken", false, acceptBrokenUsage)
	addStoreFlags(c, o)
	return c
}

// acceptBrokenUsage documents --accept-broken of export and import.
const acceptBrokenUsage = "copy a source whose hash chain is broken: the copy is re-chained and its first event records that the source did not verify"

// copyLog copies every record and the keyring of src into the store at
// dst, which must hold no event yet. The keyring is copied verbatim, so
// the copy opens with the same master key and no key is ever unsealed.
//
// The source must verify first: the records are copied with their
// original chain (each PrevHash as written), so the copy verifies exactly
// when the source does, and an altered source cannot come out as a clean
// copy. With acceptBroken, a source that does not verify is copied
// re-chained (the new log's chain is its own) and the first event of the
// copy, store.broken_source_accepted.v1, records what the source's
// verification said and who accepted it.
func copyLog(ctx context.Context, stderr io.Writer, src eventstore.Store, from, dst string, quiet, acceptBroken bool, what string) (uint64, error) {
	var broken *eventstore.ChainError
	if _, err := eventstore.Verify(ctx, src, nil); err != nil {
		var ce *eventstore.ChainError
		if !errors.As(err, &ce) {
			return 0, fmt.Errorf("%s: verify the source: %w", what, err)
		}
		if !acceptBroken {
			return 0, withHint(fmt.Errorf("%s: the source does not verify: %w", what, &brokenChainError{ce}),
				"restore the source from a backup; --accept-broken copies it anyway, re-chained, and records that in the new log")
		}
		broken = ce
	}
	out, err := openStoreAt(ctx, dst, false)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	recs, err := out.ReadAll(ctx, 1, 1)
	if err != nil {
		return 0, fmt.Errorf("%s: read destination: %w", what, err)
	}
	if len(recs) > 0 {
		return 0, withHint(fmt.Errorf("%s: the destination %s already holds events", what, dst), "use a new file or an empty EventStoreDB")
	}
	srcKR, ok1 := src.(eventstore.KeyringStorage)
	dstKR, ok2 := out.(eventstore.KeyringStorage)
	if !ok1 || !ok2 {
		return 0, fmt.Errorf("%s: a store backend cannot keep a keyring", what)
	}
	ring, err := srcKR.LoadKeyring(ctx)
	hasRing := err == nil
	if err != nil && !errors.Is(err, eventstore.ErrNoKeyring) {
		return 0, fmt.Errorf("%s: load keyring: %w", what, err)
	}
	var bar *progressbar.ProgressBar
	var copied uint64
	progress := func(done, total uint64) {
		copied = done
		if quiet {
			return
		}
		if bar == nil {
			bar = newBar(stderr, int64(total), what)
			quiet = bar == nil
		}
		if bar != nil {
			_ = bar.Set64(int64(done))
		}
	}
	if broken == nil {
		err = eventstore.Copy(ctx, out, decodingStore{src}, progress)
	} else {
		err = copyRechained(ctx, out, decodingStore{src}, from, broken, progress)
	}
	finishBar(bar)
	if err != nil {
		return copied, fmt.Errorf("%s: %w", what, err)
	}
	if hasRing {
		if err := dstKR.SaveKeyring(ctx, ring); err != nil {
			return copied, fmt.Errorf("%s: save keyring: %w", what, err)
		}
	}
	return copied, nil
}

// copyRechained copies a source that does not verify: first the event
// that records the acceptance, then every record appended to its stream
// in order (the destination computes a new chain).
func copyRechained(ctx context.Context, out, src eventstore.Store, from string, ce *eventstore.ChainError, progress func(done, total uint64)) error {
	first, err := src.ReadAll(ctx, 1, 1)
	if err != nil {
		return err
	}
	meta := eventstore.Metadata{Time: time.Now().UTC(), Actor: cliActor()}
	if len(first) > 0 {
		// The suite and mode of the log, which serve checks on its first
		// event.
		meta.Suite, meta.Mode = first[0].Meta.Suite, first[0].Meta.Mode
	}
	data, err := json.Marshal(eventreg.BrokenSourceAccepted{Source: from, Stream: ce.Stream, Version: ce.Version, Position: ce.Position, Reason: ce.Reason})
	if err != nil {
		return err
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	if _, err := out.Append(ctx, eventreg.StreamIntegrity, eventstore.Any, eventstore.EventData{
		ID: hex.EncodeToString(id), Type: eventreg.TypeBrokenSourceAccepted, Data: data, Meta: meta}); err != nil {
		return fmt.Errorf("record the acceptance: %w", err)
	}
	var done uint64
	for from := uint64(1); ; {
		page, err := src.ReadAll(ctx, from, 4096)
		if err != nil {
			return err
		}
		for i := range page {
			if _, err := out.Append(ctx, page[i].Stream, eventstore.Any, page[i].EventData); err != nil {
				return fmt.Errorf("copy position %d: %w", page[i].Position, err)
			}
		}
		done += uint64(len(page))
		if len(page) < 4096 {
			progress(done, done)
			return nil
		}
		progress(done, done)
		from = page[len(page)-1].Position + 1
	}
}

// cliActor is the actor of an event the CLI itself appends.
func cliActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli:unknown"
}

// newBar returns a progress bar on w, or nil when w is not a terminal: a
// bar in a log file or a pipe is only noise.
func newBar(w io.Writer, total int64, desc string) *progressbar.ProgressBar {
	if f, ok := w.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

func finishBar(bar *progressbar.ProgressBar) {
	if bar != nil {
		_ = bar.Finish()
		_ = bar.Clear()
	}
}
