package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestClient(t *testing.T, h http.Handler, opts ...Option) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, "secret-token", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewRejectsBadInput(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://x", "http://"} {
		if _, err := New(u, "t"); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	if _, err := New("http://x", "a\nb"); err == nil {
		t.Error("token with a line break accepted")
	}
}

// TestRequests checks method, escaped path, auth header and body of a few
// calls, including a topic with '/' that must travel as %2F.
func TestRequests(t *testing.T) {
	type seen struct{ method, rawPath, auth, body, query string }
	var mu sync.Mutex
	var got []seen
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, r.ContentLength)
		_, _ = r.Body.Read(b)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), string(b), r.URL.RawQuery})
		mu.Unlock()
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/topics":
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{"topic":"a/b","rotated":false}`)
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/clients":
			fmt.Fprint(w, `{"items":[{"name":"alice","id":"00","topics":2}],"next":"c1.x"}`)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	ctx := context.Background()
	res, err := c.NewTopic(ctx, "a/b")
	if err != nil || res.Topic != "a/b" || res.Rotated {
		t.Fatalf("NewTopic = %+v, %v", res, err)
	}
	if err := c.Attach(ctx, "alice", "a/b"); err != nil {
		t.Fatal(err)
	}
	pg, err := c.ListClients(ctx, "c1.y", 5)
	if err != nil || len(pg.Items) != 1 || pg.Items[0].Name != "alice" || pg.Next != "c1.x" {
		t.Fatalf("ListClients = %+v, %v", pg, err)
	}
	want := []seen{
		{"POST", "/api/v1/topics", "Bearer secret-token", `{"topic":"a/b"}`, ""},
		{"PUT", "/api/v1/clients/alice/topics/a%2Fb", "Bearer secret-token", "", ""},
		{"GET", "/api/v1/clients", "Bearer secret-token", "", "cursor=c1.y&limit=5"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d requests, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestErrorDecoding(t *testing.T) {
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/clients/ghost":
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":{"code":"unknown_client","message":"unknown client","request_id":"r1"}}`)
		default:
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, `<html>not json</html>`)
		}
	}))
	_, err := c.GetClient(context.Background(), "ghost")
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an *Error", err)
	}
	if ae.Status != 404 || ae.Code != "unknown_client" || ae.RequestID != "r1" {
		t.Errorf("error = %+v", ae)
	}
	if got, want := ae.Error(), "unknown client (unknown_client, HTTP 404)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !IsStatus(err, 404) || IsStatus(err, 400) {
		t.Error("IsStatus is wrong")
	}
	_, err = c.CountTopics(context.Background())
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Code != "" {
		t.Fatalf("non-JSON error = %v", err)
	}
	if !strings.Contains(ae.Error(), "HTTP 502") {
		t.Errorf("Error() = %q", ae.Error())
	}
}

// TestEventsResume serves a stream that drops after two events; the client
// must reconnect with Last-Event-ID and get the rest exactly once.
func TestEventsResume(t *testing.T) {
	var mu sync.Mutex
	var lastIDs []string
	drops := 0
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		mu.Unlock()
		start := uint64(1)
		if v := r.URL.Query().Get("from"); v != "" {
			start, _ = strconv.ParseUint(v, 10, 64)
		}
		if lid := r.Header.Get("Last-Event-ID"); lid != "" {
			n, _ := strconv.ParseUint(lid, 10, 64)
			start = n + 1
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "retry: 10\n: hello\n\n")
		for p := start; p < start+2 && p <= 5; p++ {
			b, _ := json.Marshal(Event{Position: p, Type: "x.v1", Stream: "s"})
			fmt.Fprintf(w, "id: %d\nevent: x.v1\ndata: %s\n\n: heartbeat\n\n", p, b)
		}
		// then drop the connection
	}), WithStreamDropHandler(func(error) { drops++ }))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var pos []uint64
	err := c.Events(ctx, 2, func(ev Event) error {
		pos = append(pos, ev.Position)
		if ev.Position == 5 {
			return ErrStop
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(pos) != "[2 3 4 5]" {
		t.Errorf("positions = %v, want [2 3 4 5]", pos)
	}
	mu.Lock()
	defer mu.Unlock()
	if drops != 1 {
		t.Errorf("drop handler called %d times, want 1", drops)
	}
	if fmt.Sprint(lastIDs) != "[ 3]" {
		t.Errorf("Last-Event-ID headers = %q, want [\"\" \"3\"]", lastIDs)
	}
}

func TestEventsErrorFrame(t *testing.T) {
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "event: error\ndata: {\"code\":\"internal\",\"message\":\"internal error\"}\n\n")
	}))
	err := c.Events(context.Background(), 0, func(Event) error { return nil })
	var se *StreamError
	if !errors.As(err, &se) || se.Detail.Code != "internal" {
		t.Fatalf("Events = %v, want a *StreamError", err)
	}
}

func TestEventsUnauthorized(t *testing.T) {
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"code":"invalid_token","message":"invalid or revoked token"}}`)
	}))
	err := c.Events(context.Background(), 0, func(Event) error { return nil })
	if !IsStatus(err, http.StatusUnauthorized) {
		t.Fatalf("Events = %v, want HTTP 401", err)
	}
}

func TestReadSSEMultilineData(t *testing.T) {
	in := "id: 7\ndata: a\ndata: b\n\n"
	var got []string
	err := readSSE(strings.NewReader(in), func(id, typ, data string) error {
		got = append(got, id+"|"+typ+"|"+data)
		return nil
	}, nil)
	if err == nil {
		t.Error("end of stream not reported")
	}
	if fmt.Sprint(got) != "[7||a\nb]" {
		t.Errorf("frames = %q", got)
	}
}
