package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	nethttp "net/http"
	"strconv"
	"time"

	httpapi "github.com/e4c2/e4c2/transport/http"
)

type auditData struct {
	Client, Topic, Actor, Type, From, To string
	Cursor, Next                         string
	Newest                               bool
	Entries                              []httpapi.AuditEntry
}

// parseWhen reads a time filter: RFC 3339, or the browser's
// datetime-local form (taken as UTC).
func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, &statusError{nethttp.StatusBadRequest, fmt.Sprintf("time %q: use RFC 3339 (2006-01-02T15:04:05Z)", s)}
}

// audit is the audit trail with filters: the newest entries first, or
// from the oldest a page at a time (cursor).
func (c *Console) audit(q *req) error {
	d := auditData{Client: q.query("client"), Topic: q.query("topic"), Actor: q.query("actor"),
		Type: q.query("type"), From: q.query("from"), To: q.query("to"), Cursor: q.query("cursor")}
	from, err := parseWhen(d.From)
	if err != nil {
		return err
	}
	to, err := parseWhen(d.To)
	if err != nil {
		return err
	}
	aq := httpapi.AuditQuery{Client: d.Client, Topic: d.Topic, Actor: d.Actor, Type: d.Type, From: from, To: to}
	if d.Cursor == "" {
		d.Newest = true
		d.Entries, err = c.auditTail(q.r.Context(), aq, 100)
		if err != nil {
			return err
		}
		return c.render(q, "audit", "Audit", d)
	}
	if d.Cursor == "start" {
		d.Cursor = ""
	}
	aq.Page = httpapi.PageRequest{Cursor: d.Cursor, Limit: 100}
	pg, err := c.api.Audit(q.r.Context(), aq)
	if err != nil {
		return err
	}
	d.Entries, d.Next = pg.Items, pg.Next
	return c.render(q, "audit", "Audit", d)
}

// eventsPage shows the live event stream (the script connects to
// events/stream).
func (c *Console) eventsPage(q *req) error {
	// The stream starts right after the position read before the recent
	// entries: nothing falls between them (the script drops the entries
	// it already shows).
	var from uint64
	if c.cfg.Position != nil {
		from = c.cfg.Position() + 1
	}
	recent, err := c.auditTail(q.r.Context(), httpapi.AuditQuery{}, 20)
	if err != nil {
		return err
	}
	return c.render(q, "events", "Live events", eventsData{From: from, Recent: recent})
}

type eventsData struct {
	From   uint64
	Recent []httpapi.AuditEntry
}

// streamWriteTimeout bounds each write of the live stream.
const streamWriteTimeout = 30 * time.Second

// tokenCheck is how often an open stream checks its session's token;
// maxStreams is how many live streams one token may hold open, over all
// its sessions (a script may log in again and again).
const (
	tokenCheck = 5 * time.Second
	maxStreams = 5
)

var errTooManyStreams = &statusError{nethttp.StatusTooManyRequests, "too many live event streams open with this token"}

// openStream counts a live stream of a token; false when it has too
// many. closeStream undoes it.
func (c *Console) openStream(key [32]byte) bool {
	c.streamsMu.Lock()
	defer c.streamsMu.Unlock()
	if c.streams[key] >= maxStreams {
		return false
	}
	c.streams[key]++
	return true
}

func (c *Console) closeStream(key [32]byte) {
	c.streamsMu.Lock()
	defer c.streamsMu.Unlock()
	if c.streams[key]--; c.streams[key] <= 0 {
		delete(c.streams, key)
	}
}

// eventStream is the live stream of audit entries (Server-Sent Events),
// from the current position (or after Last-Event-ID). Each event is the
// entry's public JSON: never a payload. The stream ends when the session
// ends, when its token is revoked, or at shutdown.
func (c *Console) eventStream(q *req) error {
	if !c.openStream(q.s.tokenHash) {
		return errTooManyStreams
	}
	defer c.closeStream(q.s.tokenHash)
	var from uint64
	if c.cfg.Position != nil {
		from = c.cfg.Position() + 1
	}
	if f, err := strconv.ParseUint(q.query("from"), 10, 64); err == nil && f > 0 {
		from = f
	}
	if last, err := strconv.ParseUint(q.r.Header.Get("Last-Event-ID"), 10, 64); err == nil {
		from = last + 1
	}
	ctx, cancel := context.WithCancel(q.r.Context())
	defer cancel()
	events := make(chan httpapi.Event, 64)
	subErr := make(chan error, 1)
	go func() {
		subErr <- c.api.Subscribe(ctx, from, func(ev httpapi.Event) error {
			select {
			case events <- ev:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	w := q.w
	rc := nethttp.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(nethttp.StatusOK)
	write := func(f string, args ...any) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if _, err := fmt.Fprintf(w, f, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write(": e4c2 live events from %d\n\n", from) {
		return nil
	}
	beat := time.NewTicker(c.cfg.Heartbeat)
	defer beat.Stop()
	check := time.NewTicker(tokenCheck)
	defer check.Stop()
	for {
		select {
		case ev := <-events:
			if !writeEvent(write, ev) {
				return nil
			}
		case <-beat.C:
			if !write(": keep-alive\n\n") {
				return nil
			}
		case <-check.C:
			if _, ok, why := c.authenticate(q.r); !ok && !errors.Is(why, errUnavailable) {
				reason, _ := json.Marshal(map[string]string{"reason": why.Error()})
				write("event: logout\ndata: %s\n\n", reason)
				return nil
			}
		case <-subErr:
			return nil
		case <-c.done:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// writeEvent sends one event: its audit entry when it has one, else its
// envelope (type, time, actor).
func writeEvent(write func(string, ...any) bool, ev httpapi.Event) bool {
	data := []byte(ev.Data)
	if len(data) == 0 {
		var err error
		data, err = json.Marshal(httpapi.AuditEntry{Position: ev.Position, Time: ev.Time, Type: ev.Type, Actor: ev.Actor, Stream: ev.Stream})
		if err != nil {
			return false
		}
	}
	return write("id: %d\ndata: %s\n\n", ev.Position, data)
}
