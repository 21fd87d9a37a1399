package http

import (
	"context"
	"crypto/sha256"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/e4c2/e4c2/internal/testwait"
)

// readToEnd reads what is left of a stream until the server ends it; it
// fails the test if the stream is still open after d.
func readToEnd(t *testing.T, s *sseStream, d time.Duration) string {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(s.r)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("stream: %v", r.err)
		}
		return string(r.b)
	case <-time.After(d):
		s.close() // unblocks the reader
		t.Fatalf("the stream is still open after %s", d)
		return ""
	}
}

// revokeQuietly revokes a token in the fake without a token.revoked.v1
// event, as a backend whose events lag would.
func (f *fakeBackend) revokeQuietly(secret string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[sha256.Sum256([]byte(secret))].revoked = true
}

// Revoking a token ends its open streams at once: the token.revoked.v1
// event is the trigger, and it is not delivered to the revoked token.
func TestSSEEndsWhenTokenRevoked(t *testing.T) {
	h := newHarness(t, Config{StreamTokenCheck: time.Hour}) // only the event can end it
	srv := httptest.NewServer(h.s.Handler())
	t.Cleanup(srv.Close)
	tmp := h.f.addToken("tmp", RoleReader)
	addTopics(t, h, "a")
	s := openStream(t, srv, tmp)
	other := openStream(t, srv, h.reader)
	s.expectIDs(1)
	other.expectIDs(1)
	h.expect(h.do(del, "/api/v1/tokens/tmp", h.admin, nil), 204, "")
	addTopics(t, h, "b")
	rest := readToEnd(t, s, 5*time.Second)
	if strings.Contains(rest, "id: ") || !strings.Contains(rest, `"code":"token_revoked"`) {
		t.Fatalf("after revocation the stream sent %q", rest)
	}
	other.expectIDs(2, 3) // other tokens' streams go on, revocation included
	testwait.For(t, "the revoked stream's subscription to end", func() bool { return h.f.subs.Load() == 1 })
}

// Without the event (a stream far behind, a lagging backend), the periodic
// check ends the stream of a revoked token.
func TestSSEEndsWhenTokenRevokedPeriodic(t *testing.T) {
	h := newHarness(t, Config{StreamTokenCheck: 20 * time.Millisecond})
	srv := httptest.NewServer(h.s.Handler())
	t.Cleanup(srv.Close)
	tmp := h.f.addToken("tmp", RoleReader)
	addTopics(t, h, "a")
	s := openStream(t, srv, tmp)
	s.expectIDs(1)
	h.f.revokeQuietly(tmp)
	if rest := readToEnd(t, s, 5*time.Second); !strings.Contains(rest, `"code":"token_revoked"`) {
		t.Fatalf("after revocation the stream sent %q", rest)
	}
	h.expect(h.do(get, "/api/v1/events", tmp, nil), 401, "invalid_token")
}

// A stream ends after StreamMaxLifetime; the client resumes with
// Last-Event-ID without gap or duplicate.
func TestSSEMaxLifetime(t *testing.T) {
	h := newHarness(t, Config{StreamMaxLifetime: 50 * time.Millisecond})
	srv := httptest.NewServer(h.s.Handler())
	t.Cleanup(srv.Close)
	addTopics(t, h, "a", "b")
	s := openStream(t, srv, h.reader)
	s.expectIDs(1, 2)
	if rest := readToEnd(t, s, 5*time.Second); !strings.Contains(rest, "lifetime") {
		t.Fatalf("end of stream %q", rest)
	}
	addTopics(t, h, "c")
	s2 := openStream(t, srv, h.reader, HeaderLastEventID, "2")
	s2.expectIDs(3)
}

// At most MaxStreamsPerToken streams per token: the next is a 429 with
// Retry-After; other tokens are not affected; a closed stream frees its
// slot.
func TestSSEStreamsPerToken(t *testing.T) {
	h := newHarness(t, Config{MaxStreamsPerToken: 2})
	srv := httptest.NewServer(h.s.Handler())
	t.Cleanup(srv.Close)
	addTopics(t, h, "a")
	s1 := openStream(t, srv, h.reader)
	s2 := openStream(t, srv, h.reader)
	s1.expectIDs(1)
	s2.expectIDs(1)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := nethttp.NewRequestWithContext(ctx, get, srv.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+h.reader)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"code":"too_many_streams"`) {
		t.Fatalf("third stream: %d, Retry-After %q, %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	openStream(t, srv, h.oper).expectIDs(1) // another token

	s1.close()
	key := sha256.Sum256([]byte(h.reader))
	testwait.For(t, "the closed stream to free its slot", func() bool { return h.s.streams.count(key) == 1 })
	openStream(t, srv, h.reader).expectIDs(1)
}

func TestSSELimitsConfig(t *testing.T) {
	for _, cfg := range []Config{{StreamMaxLifetime: -1}, {StreamTokenCheck: -1}} {
		if _, err := New(cfg, newFake(), nil); err == nil {
			t.Fatalf("config %+v accepted", cfg)
		}
	}
	c, err := Config{}.withDefaults()
	if err != nil || c.StreamMaxLifetime != time.Hour || c.StreamTokenCheck != 5*time.Second || c.MaxStreamsPerToken != 10 {
		t.Fatalf("defaults %+v %v", c, err)
	}
	// No cap when negative.
	h := newHarness(t, Config{MaxStreamsPerToken: -1})
	srv := httptest.NewServer(h.s.Handler())
	t.Cleanup(srv.Close)
	addTopics(t, h, "a")
	for range 12 {
		openStream(t, srv, h.reader).expectIDs(1)
	}
}

// With the real service (the stream reads the log, the check a read
// model), revoking a token through the API ends its stream well before the
// periodic check.
func TestSSEEndsWhenTokenRevokedRealBackend(t *testing.T) {
	e := newRuleEnv(t)
	e.s.cfg.StreamTokenCheck = time.Hour
	srv := httptest.NewServer(e.s.Handler())
	t.Cleanup(srv.Close)
	rec := e.do(post, "/api/v1/tokens", e.admin, map[string]string{"name": "tmp", "role": "reader"})
	e.expect(rec, 201, "")
	tmp := decode[struct {
		Token string `json:"token"`
	}](t, rec).Token
	if tmp == "" {
		t.Fatalf("no secret in %s", rec.Body.String())
	}
	s := openStream(t, srv, tmp)
	if _, err := s.next(); err != nil {
		t.Fatal(err)
	}
	e.expect(e.do(del, "/api/v1/tokens/tmp", e.admin, nil), 204, "")
	if rest := readToEnd(t, s, 5*time.Second); !strings.Contains(rest, `"code":"token_revoked"`) {
		t.Fatalf("after revocation the stream sent %q", rest)
	}
}
