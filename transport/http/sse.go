package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// HeaderLastEventID is the SSE resume header: the stream restarts right
// after that global position.
const HeaderLastEventID = "Last-Event-ID"

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
// subscription fails or Close is called.
func (s *Server) events(c echo.Context) error {
	from, err := streamStart(c)
	if err != nil {
		return err
	}
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
	tick := time.NewTicker(s.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case ev := <-evc:
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
		case err := <-errc:
			subDone = true
			if ctx.Err() == nil && err != nil && !errors.Is(err, context.Canceled) {
				s.log.LogAttrs(ctx, slog.LevelError, "event stream ended",
					slog.String("request_id", requestID(c)), slog.String("error", err.Error()))
				_, code, msg := classify(err)
				b, _ := json.Marshal(errorDetail{Code: code, Message: msg, RequestID: requestID(c)})
				_ = send([]byte("event: error\ndata: " + string(b) + "\n\n"))
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
