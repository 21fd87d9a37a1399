package apiclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrStop may be returned by an Events callback to end the stream without
// error.
var ErrStop = errors.New("apiclient: stop")

// errStreamClosed is the drop reason when the server ended the stream
// (e.g. it is shutting down).
var errStreamClosed = errors.New("the server closed the stream")

// maxSSELine bounds one line of the event stream (an event's JSON).
const maxSSELine = 1 << 20

// Events follows the server's event stream (SSE) from global position from
// (0 or 1: the start) and calls fn for each event, in order. When the
// connection drops it reconnects with Last-Event-ID set to the last
// position seen, so nothing is missed or repeated. It returns nil when fn
// returns ErrStop, ctx.Err() when ctx is done, and an API error (*Error) or
// a stream error event from the server as is. When the very first
// connection fails (no server there, wrong URL) it returns that error
// instead of retrying: reconnecting is for a stream that was up, and a
// mistyped --server must not look like a quiet stream forever.
func (c *Client) Events(ctx context.Context, from uint64, fn func(Event) error) error {
	var last uint64 // last position delivered
	retry := 2 * time.Second
	connected := false
	for {
		err := c.stream(ctx, from, last, fn, &last, &retry, &connected)
		if err != nil && !connected && ctx.Err() == nil && !errors.Is(err, ErrStop) {
			return err
		}
		switch {
		case errors.Is(err, ErrStop):
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			var ae *Error
			if errors.As(err, &ae) {
				return err
			}
			var se *StreamError
			if errors.As(err, &se) {
				return err
			}
		}
		// Connection lost (or ended by the server): resume after the
		// server's retry delay.
		if c.onDrop != nil {
			if err == nil {
				err = errStreamClosed
			}
			c.onDrop(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(retry):
		}
	}
}

// StreamError is an "event: error" frame sent by the server before it
// closes the stream.
type StreamError struct{ Detail ErrorDetail }

func (e *StreamError) Error() string {
	return fmt.Sprintf("event stream: %s (%s)", e.Detail.Message, e.Detail.Code)
}

func (c *Client) stream(ctx context.Context, from, lastID uint64, fn func(Event) error, last *uint64, retry *time.Duration, connected *bool) error {
	q := url.Values{}
	if from > 0 {
		q.Set("from", strconv.FormatUint(from, 10))
	}
	req, err := c.newRequest(ctx, http.MethodGet, Prefix+"/events", q, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(lastID, 10))
	}
	resp, err := c.sse.Do(req)
	if err != nil {
		return fmt.Errorf("apiclient: events: %w", unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	*connected = true
	return readSSE(resp.Body, func(id, typ, data string) error {
		if typ == "error" {
			var d ErrorDetail
			_ = json.Unmarshal([]byte(data), &d)
			return &StreamError{Detail: d}
		}
		var ev Event
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return fmt.Errorf("apiclient: event %s: %w", id, err)
		}
		if err := fn(ev); err != nil {
			return err
		}
		*last = ev.Position
		return nil
	}, retry)
}

// readSSE parses a text/event-stream body and calls frame for every
// dispatched event that has data. Comment lines (heartbeats) are skipped;
// "retry:" updates *retry.
func readSSE(r io.Reader, frame func(id, typ, data string) error, retry *time.Duration) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxSSELine)
	var id, typ string
	var data strings.Builder
	hasData := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if hasData {
				if err := frame(id, typ, data.String()); err != nil {
					return err
				}
			}
			id, typ, hasData = "", "", false
			data.Reset()
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			id = value
		case "event":
			typ = value
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			hasData = true
		case "retry":
			if ms, err := strconv.Atoi(value); err == nil && ms > 0 && retry != nil {
				*retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("apiclient: events: %w", err)
	}
	return errStreamClosed
}
