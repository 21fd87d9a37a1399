package http

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/e4c2/e4c2/internal/testwait"
)

// sseFrame is one parsed SSE event.
type sseFrame struct {
	id, event string
	data      Event
}

// sseStream reads frames and comments from a live response.
type sseStream struct {
	t      *testing.T
	resp   *nethttp.Response
	r      *bufio.Reader
	cancel context.CancelFunc
	beats  int
}

func openStream(t *testing.T, srv *httptest.Server, token string, hdr ...string) *sseStream {
	t.Helper()
	return openStreamURL(t, srv.URL, srv.Client(), token, hdr...)
}

func openStreamURL(t *testing.T, base string, client *nethttp.Client, token string, hdr ...string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := nethttp.NewRequestWithContext(ctx, get, base+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("open stream: %v", err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("stream status %d type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{t: t, resp: resp, r: bufio.NewReader(resp.Body), cancel: cancel}
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() {
	s.cancel()
	_ = s.resp.Body.Close()
}

// next returns the next event frame, counting heartbeats on the way; it
// returns io.EOF when the server ends the stream.
func (s *sseStream) next() (sseFrame, error) {
	s.t.Helper()
	var f sseFrame
	got := false
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return f, err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if got {
				return f, nil
			}
		case strings.HasPrefix(line, ": heartbeat"):
			s.beats++
		case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "retry:"):
		case strings.HasPrefix(line, "id: "):
			f.id, got = line[4:], true
		case strings.HasPrefix(line, "event: "):
			f.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(line[6:]), &f.data); err != nil {
				s.t.Fatalf("bad data line %q: %v", line, err)
			}
		default:
			s.t.Fatalf("unexpected SSE line %q", line)
		}
	}
}

// expectIDs reads frames and checks their ids are exactly want, in order.
func (s *sseStream) expectIDs(want ...uint64) {
	s.t.Helper()
	for _, w := range want {
		f, err := s.next()
		if err != nil {
			s.t.Fatalf("reading event %d: %v", w, err)
		}
		if f.id != strconv.FormatUint(w, 10) || f.data.Position != w || f.event != f.data.Type {
			s.t.Fatalf("got frame id %s (position %d, event %s), want %d", f.id, f.data.Position, f.event, w)
		}
	}
}

func addTopics(t *testing.T, h *harness, names ...string) {
	t.Helper()
	for _, n := range names {
		h.expect(h.do(post, "/api/v1/topics", h.oper, map[string]string{"topic": n}), 201, "")
	}
}

func TestSSEResume(t *testing.T) {
	h := newHarness(t, Config{Heartbeat: 20 * time.Millisecond})
	srv := httptest.NewServer(h.s.Handler())
	t.Cleanup(srv.Close)
	addTopics(t, h, "a", "b", "c", "d", "e")

	s1 := openStream(t, srv, h.reader)
	s1.expectIDs(1, 2, 3)
	s1.close() // the client goes away after event 3
	testwait.For(t, "subscription to end after disconnect", func() bool { return h.f.subs.Load() == 0 })

	addTopics(t, h, "f", "g", "h")
	s2 := openStream(t, srv, h.reader, HeaderLastEventID, "3")
	s2.expectIDs(4, 5, 6, 7, 8) // catch-up: no gap, no duplicate
	addTopics(t, h, "i")
	s2.expectIDs(9) // live
	// from= query when no Last-Event-ID.
	s3 := openStream(t, srv, h.reader)
	s3.expectIDs(1, 2)
	s4 := openStream(t, srv, h.reader)
	_ = s4
	req, _ := nethttp.NewRequest(get, srv.URL+"/api/v1/events?from=7", nil)
	req.Header.Set("Authorization", "Bearer "+h.reader)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	s5 := &sseStream{t: t, resp: resp, r: bufio.NewReader(resp.Body), cancel: func() {}}
	s5.expectIDs(7, 8, 9)
	_ = resp.Body.Close()

	// Close ends every stream cleanly (EOF for the client) and the
	// subscriptions behind them.
	h.s.Close()
	for _, s := range []*sseStream{s2, s3, s4} {
		for {
			if _, err := s.next(); err != nil {
				if err != io.EOF {
					t.Fatalf("stream end: %v", err)
				}
				break
			}
		}
	}
	testwait.For(t, "subscriptions to end after Close", func() bool { return h.f.subs.Load() == 0 })
}

func TestSSEErrors(t *testing.T) {
	h := newHarness(t, Config{})
	h.expect(h.do(get, "/api/v1/events", "", nil), 401, "missing_token")
	h.expect(h.do(get, "/api/v1/events", h.reader, nil, HeaderLastEventID, "x"), 400, "invalid_last_event_id")
	h.expect(h.do(get, "/api/v1/events?from=-1", h.reader, nil), 400, "invalid_from")
}

func TestSSEHeartbeat(t *testing.T) {
	h := newHarness(t, Config{Heartbeat: 10 * time.Millisecond})
	srv := httptest.NewServer(h.s.Handler())
	t.Cleanup(srv.Close)
	s := openStream(t, srv, h.reader)
	done := make(chan error, 1)
	go func() {
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				done <- err
				return
			}
			if line == ": heartbeat\n" {
				done <- nil
				return
			}
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("no heartbeat: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no heartbeat within 5s")
	}
}

// TestSSEEndsOnShutdown wires Close the way the composition root must
// (http.Server.RegisterOnShutdown) and checks Shutdown returns promptly
// with a stream open.
func TestSSEEndsOnShutdown(t *testing.T) {
	h := newHarness(t, Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &nethttp.Server{Handler: h.s.Handler(), ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 50 * time.Millisecond}
	hs.RegisterOnShutdown(h.s.Close)
	go func() { _ = hs.Serve(ln) }()
	addTopics(t, h, "a")
	s := openStreamURL(t, "http://"+ln.Addr().String(), &nethttp.Client{}, h.reader)
	s.expectIDs(1)
	// The stream outlives the server's WriteTimeout: each write extends
	// its own deadline.
	time.Sleep(120 * time.Millisecond)
	addTopics(t, h, "b")
	s.expectIDs(2)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with an open stream: %v", err)
	}
	if _, err := s.next(); err != io.EOF {
		t.Fatalf("stream after shutdown: %v", err)
	}
	testwait.For(t, "subscription to end", func() bool { return h.f.subs.Load() == 0 })
}
