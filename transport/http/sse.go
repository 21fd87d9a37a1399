package http

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/transport/http/apitypes"
)

// HeaderLastEventID is the SSE resume header: the stream restarts right
// after that global position.
const HeaderLastEventID = "Last-Event-ID"

// Defaults of the stream limits (see Config).
const (
	defaultStreamMaxLifetime  = time.Hour
	defaultStreamTokenCheck   = 5 * time.Second
	defaultMaxStreamsPerToken = 10
	// streamRetryAfter is the Retry-After of a stream refused for the
	// per-token cap, in seconds: streams end when their clients go, so
	// a slot frees up at no predictable time.
	streamRetryAfter = 5
	// After a token.revoked.v1 that did not end the stream, the token is
	// checked again every revokeRecheck, revokeRechecks times: the event
	// comes from the log, and the read model the check asks may apply it
	// a moment later.
	revokeRecheck  = 50 * time.Millisecond
	revokeRechecks = 20
)

// typeTokenRevoked is the wire name of the event that revokes a token.
const typeTokenRevoked = "token.revoked.v1"

// streamDefaults fills and checks the stream limits of Config.
func (c *Config) streamDefaults() error {
	if c.StreamMaxLifetime == 0 {
		c.StreamMaxLifetime = defaultStreamMaxLifetime
	}
	if c.StreamTokenCheck == 0 {
		c.StreamTokenCheck = defaultStreamTokenCheck
	}
	if c.MaxStreamsPerToken == 0 {
		c.MaxStreamsPerToken = defaultMaxStreamsPerToken
	}
	if c.StreamMaxLifetime < 0 || c.StreamTokenCheck < 0 {
		return errors.New("http: stream lifetime and token check interval must be positive")
	}
	return nil
}

// streamCounter counts the open SSE streams of each token, keyed by the
// token's hash (a name can be reused after a revocation). Each stream
// holds a subscription and a goroutine for as long as it lives, so one
// token must not be able to open them without bound.
type streamCounter struct {
	mu   sync.Mutex
	open map[[32]byte]int
}

// acquire takes a stream slot of key, or reports that its max are in use
// (max < 0: no cap). release gives the slot back.
func (sc *streamCounter) acquire(key [32]byte, max int) (release func(), ok bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if max >= 0 && sc.open[key] >= max {
		return nil, false
	}
	if sc.open == nil {
		sc.open = map[[32]byte]int{}
	}
	sc.open[key]++
	return func() {
		sc.mu.Lock()
		defer sc.mu.Unlock()
		if sc.open[key]--; sc.open[key] <= 0 {
			delete(sc.open, key)
		}
	}, true
}

// count returns the streams open with key.
func (sc *streamCounter) count(key [32]byte) int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.open[key]
}

// errTokenRevoked ends a stream whose token is no longer live.
var errTokenRevoked = &apiError{status: nethttp.StatusUnauthorized, code: "token_revoked",
	msg: "the token of this stream was revoked"}

// tokenLive checks, as the auth middleware does, that the stream's token
// is still a live token. Any failure to confirm it ends the stream (fail
// closed): a client still entitled to it reconnects with Last-Event-ID and
// goes through the middleware again.
func (s *Server) tokenLive(ctx context.Context, tok Token) error {
	cur, err := s.backend.TokenByHash(ctx, tok.Hash)
	if err != nil {
		if errors.Is(err, domain.ErrUnknownToken) {
			return errTokenRevoked
		}
		return fmt.Errorf("http: re-checking the stream's token: %w", err)
	}
	if subtle.ConstantTimeCompare(cur.Hash[:], tok.Hash[:]) != 1 || !cur.Role.Valid() || cur.Role.rank() < tok.Role.rank() {
		return errTokenRevoked
	}
	return nil
}

// streamStart returns the first global position to send: the one after
// Last-Event-ID if present, else the from query parameter, else 1.
func streamStart(c echo.Context) (uint64, error) {
	if lid := strings.TrimSpace(c.Request().Header.Get(HeaderLastEventID)); lid != "" {
		n, err := strconv.ParseUint(lid, 10, 64)
		if err != nil || n == ^uint64(0) {
			return 0, badRequest("invalid_last_event_id", "Last-Event-ID must be a global position")
		}
		return n + 1, nil
	}
	if v := c.QueryParam("from"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, badRequest("invalid_from", "from must be a global position")
		}
		return max(n, 1), nil
	}
	return 1, nil
}

// events serves the event log as Server-Sent Events. Each event's id is its
// global position, so a client that reconnects with Last-Event-ID gets the
// rest without gap or duplicate (the backend's Subscribe guarantees order
// and no gap; we only resume one after the last id seen). Comment lines are
// sent as heartbeats. The stream ends when the client goes away, the
// subscription fails or Close is called; and, because the middleware saw
// the token only once, when the token is revoked (checked every
// StreamTokenCheck and at once on a token.revoked.v1 event, before that
// event is sent) and after StreamMaxLifetime. At most MaxStreamsPerToken
// streams are open per token.
func (s *Server) events(c echo.Context) error {
	from, err := streamStart(c)
	if err != nil {
		return err
	}
	tok, ok := tokenOf(c)
	if !ok {
		return errMissingToken
	}
	release, ok := s.streams.acquire(tok.Hash, s.cfg.MaxStreamsPerToken)
	if !ok {
		c.Response().Header().Set("Retry-After", strconv.Itoa(streamRetryAfter))
		return &apiError{status: nethttp.StatusTooManyRequests, code: "too_many_streams",
			msg: fmt.Sprintf("at most %d event streams may be open at once per token", s.cfg.MaxStreamsPerToken)}
	}
	defer release()
	ctx, cancel := context.WithCancel(c.Request().Context())
	evc := make(chan Event)
	errc := make(chan error, 1)
	go func() {
		errc <- s.backend.Subscribe(ctx, from, func(ev Event) error {
			select {
			case evc <- ev:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	subDone := false
	defer func() {
		cancel()
		if !subDone {
			<-errc // never leave the subscription running behind us
		}
	}()

	w := c.Response()
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(nethttp.StatusOK)
	rc := nethttp.NewResponseController(w.Writer)
	send := func(b []byte) error {
		// Per-write deadline: a server-wide WriteTimeout would otherwise cut
		// the stream; a stuck client is still dropped.
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.StreamWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := send([]byte("retry: 2000\n: stream from position " + strconv.FormatUint(from, 10) + "\n\n")); err != nil {
		return nil
	}
	sendError := func(err error) {
		_, code, msg := classify(err)
		b, _ := json.Marshal(apitypes.ErrorDetail{Code: code, Message: msg, RequestID: requestID(c)})
		_ = send([]byte("event: error\ndata: " + string(b) + "\n\n"))
	}
	// revoked ends the stream when its token is no longer live.
	revoked := func() bool {
		err := s.tokenLive(ctx, tok)
		if err == nil || ctx.Err() != nil {
			return ctx.Err() != nil
		}
		if !errors.Is(err, errTokenRevoked) {
			s.log.LogAttrs(ctx, slog.LevelWarn, "event stream ended: token check failed",
				slog.String("request_id", requestID(c)), slog.String("error", err.Error()))
		}
		sendError(err)
		return true
	}
	tick := time.NewTicker(s.cfg.Heartbeat)
	defer tick.Stop()
	check := time.NewTicker(s.cfg.StreamTokenCheck)
	defer check.Stop()
	soon := 0 // rechecks left at the revokeRecheck pace
	lifetime := time.NewTimer(s.cfg.StreamMaxLifetime)
	defer lifetime.Stop()
	for {
		select {
		case ev := <-evc:
			if ev.Type == typeTokenRevoked {
				if revoked() {
					return nil
				}
				if s.cfg.StreamTokenCheck > revokeRecheck {
					soon = revokeRechecks
					check.Reset(revokeRecheck)
				}
			}
			b, err := formatEvent(ev)
			if err != nil {
				return err
			}
			if err := send(b); err != nil {
				return nil // client gone: nothing more to say
			}
		case <-tick.C:
			if err := send([]byte(": heartbeat\n\n")); err != nil {
				return nil
			}
		case <-check.C:
			if revoked() {
				return nil
			}
			if soon > 0 {
				if soon--; soon == 0 {
					check.Reset(s.cfg.StreamTokenCheck)
				}
			}
		case <-lifetime.C:
			// The client's EventSource reconnects with Last-Event-ID
			// (after the retry delay sent first) and resumes without a
			// gap, through the auth middleware again.
			_ = send([]byte(": stream lifetime reached; reconnect with Last-Event-ID\n\n"))
			return nil
		case err := <-errc:
			subDone = true
			if ctx.Err() == nil && err != nil && !errors.Is(err, context.Canceled) {
				s.log.LogAttrs(ctx, slog.LevelError, "event stream ended",
					slog.String("request_id", requestID(c)), slog.String("error", err.Error()))
				sendError(err)
			}
			return nil
		case <-ctx.Done():
			return nil
		case <-s.done:
			_ = send([]byte(": server shutting down\n\n"))
			return nil
		}
	}
}

// formatEvent renders one SSE frame. The JSON encoding holds no newline, so
// a single data line suffices.
func formatEvent(ev Event) ([]byte, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("http: encoding event %d: %w", ev.Position, err)
	}
	var b strings.Builder
	b.Grow(len(data) + len(ev.Type) + 40)
	b.WriteString("id: ")
	b.WriteString(strconv.FormatUint(ev.Position, 10))
	b.WriteString("\nevent: ")
	b.WriteString(sanitizeLine(ev.Type))
	b.WriteString("\ndata: ")
	b.Write(data)
	b.WriteString("\n\n")
	return []byte(b.String()), nil
}

// sanitizeLine keeps a field on one line so it cannot inject SSE fields.
func sanitizeLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s)
}
