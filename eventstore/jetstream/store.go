package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	jsapi "github.com/nats-io/nats.go/jetstream"

	"github.com/e4c2/e4c2/eventstore"
)

// Options configure Open. The zero value is usable.
type Options struct {
	// Stream is the JetStream stream holding the log (default "E4C2").
	// Several C2 logs can share a NATS system under different names and
	// subject prefixes.
	Stream string
	// SubjectPrefix is the first token of the log's subjects (default
	// "e4c2"): events of stream S go to "<prefix>.s.<base64url(S)>", the
	// keyring to "<prefix>.keyring".
	SubjectPrefix string
	// Replicas is the JetStream replication factor of the streams. Zero
	// keeps the factor of streams that exist and creates new ones with 1;
	// a value changes existing streams to it (so that an instance started
	// without it never downgrades a replicated log).
	Replicas int
	// RequestTimeout bounds one request to the server (default 5 s).
	RequestTimeout time.Duration
	// RetryFor is how long an operation keeps retrying transient errors
	// (no responders, timeouts, leader elections) before it fails
	// (default 30 s). The caller's context still bounds it.
	RetryFor time.Duration
	// StallAfter is how long a subscription may deliver nothing while the
	// log holds messages past its position before Subscribe gives up on
	// its consumer and recreates it (default 10 s: the client library
	// notices most losses itself within 2 s; this is the backstop for a
	// consumer that stops without any sign). After maxStalls stalls or
	// failures in a row Subscribe returns the last error and the caller
	// subscribes again from its position.
	StallAfter time.Duration
	// Logger receives what the connection reports on its own: an
	// asynchronous error (a slow consumer: messages the server or the
	// client dropped), a disconnection and a reconnection (default: the
	// messages are discarded).
	Logger *slog.Logger
	// NATSOptions are added to the connection options of Open.
	NATSOptions []nats.Option
}

// Defaults of Options.
const (
	DefaultStream        = "E4C2"
	DefaultSubjectPrefix = "e4c2"
	DefaultStallAfter    = 10 * time.Second
)

// Store is the JetStream-backed event log.
type Store struct {
	nc      *nats.Conn
	js      jsapi.JetStream
	log     jsapi.Stream
	keyring jsapi.Stream
	opts    Options
	closed  atomic.Bool
	done    chan struct{}
	// recovered counts appends whose answer was lost and that a later
	// attempt found stored (for tests and diagnostics).
	recovered atomic.Int64
	// stalls counts the consumers Subscribe gave up on: stopped by the
	// stall watchdog, or failed (errDropped).
	stalls atomic.Int64
}

var (
	_ eventstore.Store          = (*Store)(nil)
	_ eventstore.KeyringStorage = (*Store)(nil)
	_ eventstore.HealthReporter = (*Store)(nil)
)

// IsURL reports whether s names a NATS server (nats:// or tls://), the
// form e4c2 accepts as --store.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "nats://") || strings.HasPrefix(s, "tls://")
}

// ParseURL splits a store URL into the NATS server URLs and the Options
// its query sets: stream, prefix, replicas, creds (a NATS credentials
// file) and token_file (a file holding the server's authentication token,
// as the client port of the integrated mode's node requires; read once,
// here). Several servers are separated by commas, as for nats.Connect:
// "nats://a:4222,nats://b:4222?replicas=3"; the query may follow any of
// them.
func ParseURL(s string) (servers string, opts Options, err error) {
	var parts []string
	for _, p := range strings.Split(s, ",") {
		base, query, found := strings.Cut(p, "?")
		parts = append(parts, base)
		if !found {
			continue
		}
		q, err := url.ParseQuery(query)
		if err != nil {
			return "", opts, fmt.Errorf("jetstream: store URL query: %w", err)
		}
		if err := applyQuery(q, &opts); err != nil {
			return "", opts, err
		}
	}
	for _, p := range parts {
		if !IsURL(p) {
			return "", opts, fmt.Errorf("jetstream: %q is not a nats:// or tls:// URL", redactURL(p))
		}
	}
	return strings.Join(parts, ","), opts, nil
}

func applyQuery(q url.Values, o *Options) error {
	for k, vs := range q {
		v := vs[len(vs)-1]
		switch k {
		case "stream":
			o.Stream = v
		case "prefix":
			o.SubjectPrefix = v
		case "replicas":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 5 {
				return fmt.Errorf("jetstream: store URL: replicas=%q: want 1 to 5", v)
			}
			o.Replicas = n
		case "creds":
			o.NATSOptions = append(o.NATSOptions, nats.UserCredentials(v))
		case "token_file":
			tok, err := ReadTokenFile(v)
			if err != nil {
				return err
			}
			o.NATSOptions = append(o.NATSOptions, nats.Token(tok))
		default:
			return fmt.Errorf("jetstream: store URL: unknown parameter %q (stream, prefix, replicas, creds, token_file)", k)
		}
	}
	return nil
}

// ReadTokenFile reads a NATS authentication token from path: the file's
// content without surrounding white space. Errors name the file, never
// what it holds.
func ReadTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("jetstream: token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("jetstream: token file %s is empty", path)
	}
	return tok, nil
}

// redactURL drops the user information of a URL for error messages.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = nil
		return u.String()
	}
	return s
}

// Open connects to the NATS servers named by storeURL (see ParseURL),
// creates or updates the log and keyring streams and returns the store.
// Options given in opts take precedence over those of the URL.
func Open(ctx context.Context, storeURL string, opts *Options) (*Store, error) {
	servers, o, err := ParseURL(storeURL)
	if err != nil {
		return nil, err
	}
	if opts != nil {
		o = merge(o, *opts)
	}
	nopts := append([]nats.Option{
		nats.Name("e4c2"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
	}, connLogging(o.Logger)...)
	nopts = append(nopts, o.NATSOptions...)
	nc, err := nats.Connect(servers, nopts...)
	if err != nil {
		return nil, fmt.Errorf("jetstream: connect: %w", err)
	}
	s, err := New(ctx, nc, &o)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return s, nil
}

// connLogging returns the connection options that report to log what the
// NATS connection would otherwise keep to itself: a slow consumer (the
// server or the client dropped messages, which leaves requests without
// answers and subscriptions behind), a disconnection, a reconnection.
// Server URLs are logged without user information.
func connLogging(log *slog.Logger) []nats.Option {
	if log == nil {
		return nil
	}
	return []nats.Option{
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("nats connection error", "error", err, "subject", subj)
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			log.Warn("disconnected from nats", "error", err, "server", redactURL(nc.ConnectedUrlRedacted()))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to nats", "server", redactURL(nc.ConnectedUrlRedacted()))
		}),
	}
}

// merge returns base with the fields set in over.
func merge(base, over Options) Options {
	if over.Stream != "" {
		base.Stream = over.Stream
	}
	if over.SubjectPrefix != "" {
		base.SubjectPrefix = over.SubjectPrefix
	}
	if over.Replicas != 0 {
		base.Replicas = over.Replicas
	}
	if over.RequestTimeout != 0 {
		base.RequestTimeout = over.RequestTimeout
	}
	if over.RetryFor != 0 {
		base.RetryFor = over.RetryFor
	}
	if over.StallAfter != 0 {
		base.StallAfter = over.StallAfter
	}
	if over.Logger != nil {
		base.Logger = over.Logger
	}
	base.NATSOptions = append(base.NATSOptions, over.NATSOptions...)
	return base
}

// New returns a store over an established connection, which the store
// then owns (Close closes it).
func New(ctx context.Context, nc *nats.Conn, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = DefaultSubjectPrefix
	}
	if strings.ContainsAny(o.SubjectPrefix, ".*> \t\r\n") {
		return nil, fmt.Errorf("jetstream: subject prefix %q must be one plain subject token", o.SubjectPrefix)
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 5 * time.Second
	}
	if o.RetryFor <= 0 {
		o.RetryFor = 30 * time.Second
	}
	if o.StallAfter <= 0 {
		o.StallAfter = DefaultStallAfter
	}
	js, err := jsapi.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	s := &Store{nc: nc, js: js, opts: o, done: make(chan struct{})}
	if err := s.setup(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// setup creates or updates the log and keyring streams, retrying while the
// JetStream cluster elects its leaders.
func (s *Store) setup(ctx context.Context) error {
	logCfg := jsapi.StreamConfig{
		Name:        s.opts.Stream,
		Description: "e4c2 event log",
		Subjects:    []string{s.opts.SubjectPrefix + ".s.>"},
		Retention:   jsapi.LimitsPolicy,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		Discard:     jsapi.DiscardNew,
		Storage:     jsapi.FileStorage,
		Replicas:    s.opts.Replicas,
		Duplicates:  2 * time.Minute,
		// The log is append-only: nothing may delete or purge a message,
		// which also keeps the stream sequences (our positions) gap-free.
		DenyDelete:         true,
		DenyPurge:          true,
		AllowAtomicPublish: true,
		// Reads go to the stream leader (read-your-writes); direct gets
		// may be answered by a lagging replica.
		AllowDirect: false,
	}
	keyCfg := jsapi.StreamConfig{
		Name:              s.opts.Stream + "_KEYRING",
		Description:       "e4c2 sealing keyring",
		Subjects:          []string{s.opts.SubjectPrefix + ".keyring"},
		MaxMsgsPerSubject: 1,
		Storage:           jsapi.FileStorage,
		Replicas:          s.opts.Replicas,
		AllowDirect:       false,
	}
	var err error
	if s.log, err = s.ensureStream(ctx, logCfg); err != nil {
		return err
	}
	if !s.log.CachedInfo().Config.AllowAtomicPublish {
		return errors.New("jetstream: the server does not support atomic batch publish (nats-server 2.12 or later is needed)")
	}
	if s.keyring, err = s.ensureStream(ctx, keyCfg); err != nil {
		return err
	}
	return nil
}

// ensureStream creates the stream, or updates an existing one to cfg,
// keeping its replication factor unless Options.Replicas is set.
func (s *Store) ensureStream(ctx context.Context, cfg jsapi.StreamConfig) (jsapi.Stream, error) {
	var st jsapi.Stream
	err := s.retry(ctx, func(actx context.Context) error {
		cur, err := s.js.Stream(actx, cfg.Name)
		switch {
		case errors.Is(err, jsapi.ErrStreamNotFound):
			cfg.Replicas = max(cfg.Replicas, 1)
			st, err = s.js.CreateStream(actx, cfg)
			if errors.Is(err, jsapi.ErrStreamNameAlreadyInUse) {
				// Another instance created it meanwhile: look again.
				return &jsapi.APIError{Code: 503, Description: "stream created concurrently"}
			}
			return err
		case err != nil:
			return err
		}
		if cfg.Replicas == 0 {
			cfg.Replicas = cur.CachedInfo().Config.Replicas
		}
		st, err = s.js.UpdateStream(actx, cfg)
		return err
	})
	if err != nil {
		return nil, s.mapErr(ctx, "create stream "+cfg.Name, err)
	}
	return st, nil
}

// retry runs op with a per-request timeout until it succeeds, fails with a
// permanent error, or RetryFor (or ctx) runs out.
func (s *Store) retry(ctx context.Context, op func(actx context.Context) error) error {
	deadline := time.Now().Add(s.opts.RetryFor)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := s.pause(ctx, attempt); err != nil {
				return err
			}
		}
		actx, cancel := context.WithTimeout(ctx, s.attemptTimeout(attempt))
		err := op(actx)
		cancel()
		if err == nil || !s.transient(ctx, err) || time.Now().After(deadline) {
			return err
		}
	}
}

// attemptTimeout bounds attempt number n (from 0) of a request: a fifth
// of RequestTimeout first, doubling up to it. A loaded cluster was seen to
// leave requests without any answer (in the three-instance test under
// -race, about ten of a fan-out's 200 delivery records waited the whole
// 5 s for their head read); a short first bound makes such a loss cost a
// second, and a server that is slow but alive gets the full bound on
// later attempts.
// Every request retried this way is a read or an idempotent publish.
func (s *Store) attemptTimeout(n int) time.Duration {
	d := s.opts.RequestTimeout / 5
	for range min(n, 3) {
		d *= 2
	}
	return min(d, s.opts.RequestTimeout)
}

// pause waits before retry number attempt: a short, growing backoff.
func (s *Store) pause(ctx context.Context, attempt int) error {
	d := time.Duration(min(attempt, 20)) * 25 * time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return eventstore.ErrClosed
	case <-t.C:
		return nil
	}
}

// JetStream error codes this package tells apart.
const (
	codeWrongLastSeq     = 10071 // Nats-Expected-Last-Subject-Sequence mismatch
	codeWrongLastSeqBusy = 10164 // another write with an expectation on the subject is in flight
	codeDupInProcess     = 10158 // the same Nats-Msg-Id is being stored
	codeBatchIncomplete  = 10176 // the leader lost (part of) the batch
	codeBatchDuplicate   = 10201 // the batch repeats a stored Nats-Msg-Id
	codeBatchTooManyInfl = 10210
	codeClusterNotAvail  = 10008
	codeClusterNoLeader  = 10009 // "JetStream cluster can not handle request"
	codeStreamOffline    = 10118
)

// transient reports whether err may go away by retrying: the server or
// stream leader did not answer, or answered that it cannot serve now.
func (s *Store) transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil || s.closed.Load() {
		return false
	}
	var apiErr *jsapi.APIError
	if errors.As(err, &apiErr) {
		if apiErr.Code == 503 {
			return true
		}
		switch apiErr.ErrorCode {
		case codeBatchIncomplete, codeBatchTooManyInfl, codeClusterNotAvail, codeClusterNoLeader,
			codeStreamOffline, codeDupInProcess, codeWrongLastSeqBusy:
			return true
		}
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jsapi.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrNoServers) || errors.Is(err, nats.ErrConnectionDraining) ||
		errors.Is(err, jsapi.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrJetStreamNotEnabled)
}

// mapErr turns client errors into ours: a cancelled context stays
// recognisable, a closed store or connection becomes ErrClosed.
func (s *Store) mapErr(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if s.closed.Load() || errors.Is(err, eventstore.ErrClosed) {
		return eventstore.ErrClosed
	}
	if errors.Is(err, errMapping) || errors.Is(err, eventstore.ErrConflict) {
		return err
	}
	return fmt.Errorf("jetstream: %s: %w", op, err)
}

func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	return nil
}

// subject returns the log subject of stream.
func (s *Store) subject(stream string) string {
	return s.opts.SubjectPrefix + ".s." + streamToken(stream)
}

// Health implements eventstore.HealthReporter: appends cannot succeed
// while the connection to NATS is down.
func (s *Store) Health() error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	if !s.nc.IsConnected() {
		return fmt.Errorf("jetstream: not connected to NATS (%s)", s.nc.Status())
	}
	return nil
}

// keyringType marks keyring messages.
const keyringType = "e4c2.keyring.v1"

// LoadKeyring implements eventstore.KeyringStorage: the only message of
// the keyring stream.
func (s *Store) LoadKeyring(ctx context.Context) ([]byte, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var m *jsapi.RawStreamMsg
	err := s.retry(ctx, func(actx context.Context) error {
		var err error
		m, err = s.keyring.GetLastMsgForSubject(actx, s.opts.SubjectPrefix+".keyring")
		return err
	})
	if errors.Is(err, jsapi.ErrMsgNotFound) {
		return nil, eventstore.ErrNoKeyring
	}
	if err != nil {
		return nil, s.mapErr(ctx, "load keyring", err)
	}
	if m.Header.Get("E4c2-Type") != keyringType {
		return nil, fmt.Errorf("%w: keyring stream holds a message of another type", errMapping)
	}
	return m.Data, nil
}

// SaveKeyring implements eventstore.KeyringStorage: the keyring stream
// keeps one message per subject, so a save replaces the older keyring
// (the server drops it from its files as it compacts them).
func (s *Store) SaveKeyring(ctx context.Context, keyring []byte) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	msg := nats.NewMsg(s.opts.SubjectPrefix + ".keyring")
	msg.Header.Set("E4c2-Type", keyringType)
	msg.Data = append([]byte(nil), keyring...)
	err := s.retry(ctx, func(actx context.Context) error {
		_, err := s.js.PublishMsg(actx, msg)
		return err
	})
	if err != nil {
		return s.mapErr(ctx, "save keyring", err)
	}
	return nil
}

// Close implements eventstore.Store.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return eventstore.ErrClosed
	}
	close(s.done)
	s.nc.Close()
	return nil
}
