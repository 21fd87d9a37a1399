package console

import (
	"context"
	"crypto/sha256"
	"errors"
	"html/template"
	"io/fs"
	nethttp "net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/projections"
	httpapi "github.com/e4c2/e4c2/transport/http"
)

// TestSessionLifetime: a session ends after its lifetime even when in
// use, and after its idle time when not.
func TestSessionLifetime(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	st := newSessionStore(time.Hour, 10*time.Minute, func() time.Time { return now })
	id := st.create(sha256.Sum256([]byte("tok")), "ops", httpapi.RoleOperator)
	for i := 0; i < 5; i++ { // used every 9 minutes: alive until the hour
		now = now.Add(9 * time.Minute)
		if _, _, ok := st.get(id); !ok {
			t.Fatalf("session ended after %d uses", i)
		}
	}
	now = now.Add(9 * time.Minute) // 54 min
	if _, _, ok := st.get(id); !ok {
		t.Fatal("session ended before its lifetime")
	}
	now = now.Add(7 * time.Minute) // 61 min
	if _, _, ok := st.get(id); ok {
		t.Fatal("session outlived its lifetime")
	}
	id = st.create(sha256.Sum256([]byte("tok")), "ops", httpapi.RoleOperator)
	now = now.Add(10 * time.Minute)
	if _, _, ok := st.get(id); ok {
		t.Fatal("an idle session did not end")
	}
	if _, _, ok := st.get("not-a-session"); ok {
		t.Fatal("an unknown id opened a session")
	}
}

// TestOneTokenCannotEvictOthers: logging in again and again with one
// token (any reader's) ends that token's oldest sessions, not the
// sessions of other tokens: an admin stays logged in.
func TestOneTokenCannotEvictOthers(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	st := newSessionStore(time.Hour, time.Hour, func() time.Time { now = now.Add(time.Millisecond); return now })
	admin := st.create(sha256.Sum256([]byte("admin")), "admin", httpapi.RoleAdmin)
	reader := sha256.Sum256([]byte("reader"))
	for i := 0; i < maxSessions+10; i++ {
		st.create(reader, "viewer", httpapi.RoleReader)
	}
	if _, _, ok := st.get(admin); !ok {
		t.Fatal("another token's logins ended the admin's session")
	}
	latest := st.create(reader, "viewer", httpapi.RoleReader)
	if _, _, ok := st.get(latest); !ok {
		t.Fatal("the newest session of the token was not kept")
	}
}

// TestSessionsBounded: the store never holds more than maxSessions.
func TestSessionsBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	st := newSessionStore(time.Hour, time.Hour, func() time.Time { now = now.Add(time.Millisecond); return now })
	first := st.create([32]byte{}, "a", httpapi.RoleReader)
	for i := 0; i < maxSessions+10; i++ {
		st.create([32]byte{}, "a", httpapi.RoleReader)
	}
	if n := len(st.m); n > maxSessions {
		t.Fatalf("%d sessions kept", n)
	}
	if _, _, ok := st.get(first); ok {
		t.Fatal("the oldest session survived the bound")
	}
}

// TestTemplatesHaveNoInlineCode: the CSP forbids inline script and style,
// so no template may rely on them (they would silently not work).
func TestTemplatesHaveNoInlineCode(t *testing.T) {
	bad := []*regexp.Regexp{
		regexp.MustCompile(`<script(\s[^>]*)?>[^<]`), // inline script body
		regexp.MustCompile(`<script(?:\s[^>]*)?>`),   // checked below for src
		regexp.MustCompile(`\son[a-z]+\s*=`),         // event handler attributes
		regexp.MustCompile(`\sstyle\s*=`),            // inline style
		regexp.MustCompile(`<style`),                 // style element
		regexp.MustCompile(`(?i)javascript:`),        // script URLs
		regexp.MustCompile(`https?://`),              // no CDN, nothing off-site
	}
	err := fs.WalkDir(templateFS, "templates", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(templateFS, path)
		if err != nil {
			return err
		}
		s := string(b)
		for i, re := range bad {
			for _, m := range re.FindAllString(s, -1) {
				if i == 1 && strings.Contains(m, ` src="`) {
					continue
				}
				t.Errorf("%s: %q", path, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	js, err := fs.ReadFile(staticFS, "static/console.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, forbidden := range []string{"innerHTML", "eval(", "new Function", "document.write"} {
		if strings.Contains(string(js), forbidden) {
			t.Errorf("console.js uses %s", forbidden)
		}
	}
}

func TestCrossSite(t *testing.T) {
	for _, c := range []struct {
		site, origin, host string
		want               bool
	}{
		{"same-origin", "", "a:1", false},
		{"none", "", "a:1", false},
		{"same-site", "", "a:1", true},
		{"cross-site", "", "a:1", true},
		{"", "http://a:1", "a:1", false},
		{"", "http://b:1", "a:1", true},
		{"", "null", "a:1", false},
		{"", "", "a:1", false},
	} {
		r := newRequest(c.site, c.origin, c.host)
		if got := crossSite(r); got != c.want {
			t.Errorf("Sec-Fetch-Site %q Origin %q Host %q: cross-site %v, want %v", c.site, c.origin, c.host, got, c.want)
		}
	}
}

func newRequest(site, origin, host string) *nethttp.Request {
	r := httptest.NewRequest(nethttp.MethodPost, "http://"+host+"/ui/x", nil)
	r.Host = host
	if site != "" {
		r.Header.Set("Sec-Fetch-Site", site)
	}
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	return r
}

func TestExcerpt(t *testing.T) {
	for _, c := range []struct {
		text         string
		line, column int
		want         string
	}{
		{"a ==\n  == b", 2, 2, "  == b\n  ^"},
		{"é == x", 1, 2, "é == x\n  ^"},
		{"x", 2, 0, ""},
		{"x", 1, 5, ""},
	} {
		if got := excerpt(c.text, c.line, c.column); got != c.want {
			t.Errorf("excerpt(%q, %d, %d) = %q, want %q", c.text, c.line, c.column, got, c.want)
		}
	}
}

// TestCookieAndHeadersOverTLS: over TLS the session cookie is Secure and
// pages carry Strict-Transport-Security; over plain HTTP neither (a
// Secure cookie would never come back from a lab listener).
func TestCookieAndHeadersOverTLS(t *testing.T) {
	for _, tls := range []bool{false, true} {
		c := &Console{cfg: Config{TLS: tls}}
		ck := c.cookie(cookieName, "v", 60)
		if ck.Secure != tls || !ck.HttpOnly || ck.SameSite != nethttp.SameSiteStrictMode || ck.Path != Prefix {
			t.Errorf("TLS %v: cookie %+v", tls, ck)
		}
		rec := httptest.NewRecorder()
		c.securityHeaders(rec, httptest.NewRequest(nethttp.MethodGet, "/ui/", nil))
		if got := rec.Header().Get("Strict-Transport-Security") != ""; got != tls {
			t.Errorf("TLS %v: HSTS sent %v", tls, got)
		}
	}
}

// noBackend is a Backend whose every call panics: for handlers that must
// not reach it.
type noBackend struct{ httpapi.Backend }

// TestTimeTravelBounded: at most maxReplays replays run at once; the next
// is refused at once instead of queueing a replay of the whole log.
func TestTimeTravelBounded(t *testing.T) {
	asked := 0
	c, err := New(Config{Backend: noBackend{}, AsOf: func(ctx context.Context, at projections.AsOf) (*projections.KeyState, uint64, error) {
		asked++
		return projections.NewKeyState(), 0, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	run := func() error {
		r := httptest.NewRequest(nethttp.MethodGet, "/ui/timetravel?kind=topic&name=x&at=2026-01-01T00:00:00Z", nil)
		return c.timeTravel(&req{w: httptest.NewRecorder(), r: r, c: c})
	}
	if err := run(); err != nil || asked != 1 {
		t.Fatalf("a replay: %v (asked %d)", err, asked)
	}
	for range maxReplays {
		c.replays <- struct{}{}
	}
	if err := run(); err != errBusy || asked != 1 {
		t.Fatalf("a replay over the limit: %v (asked %d)", err, asked)
	}
}

// TestStreamsPerSession: a key (a token hash) holds at most maxStreams
// live streams.
func TestStreamsPerSession(t *testing.T) {
	c := &Console{streams: map[[32]byte]int{}}
	k := [32]byte{1}
	for i := range maxStreams {
		if !c.openStream(k) {
			t.Fatalf("stream %d refused", i)
		}
	}
	if c.openStream(k) {
		t.Fatal("a stream over the limit was opened")
	}
	if !c.openStream([32]byte{2}) {
		t.Fatal("another session's stream was refused")
	}
	c.closeStream(k)
	if !c.openStream(k) {
		t.Fatal("a closed stream was not given back")
	}
}

// overviewBackend answers what the overview asks, with one monitor finding.
type overviewBackend struct{ noBackend }

func (overviewBackend) CountClients(context.Context) (int, error) { return 3, nil }
func (overviewBackend) CountTopics(context.Context) (int, error)  { return 1, nil }
func (overviewBackend) Fleet(context.Context) (httpapi.FleetSummary, error) {
	return httpapi.FleetSummary{Clients: 3}, nil
}
func (overviewBackend) PendingDeliveries(context.Context, string, httpapi.PageRequest) (httpapi.Page[httpapi.Delivery], error) {
	return httpapi.Page[httpapi.Delivery]{}, nil
}
func (overviewBackend) Audit(_ context.Context, q httpapi.AuditQuery) (httpapi.Page[httpapi.AuditEntry], error) {
	if q.Type != findingType {
		return httpapi.Page[httpapi.AuditEntry]{}, nil
	}
	return httpapi.Page[httpapi.AuditEntry]{Items: []httpapi.AuditEntry{{Position: 9, Type: findingType,
		Topic: "plant/sensors", Client: "cam-3", Summary: "forged: 4 messages"}}}, nil
}

// TestOverviewMonitorSlot: "monitor off" without the monitor; its latest
// findings with it.
func TestOverviewMonitorSlot(t *testing.T) {
	for _, on := range []bool{false, true} {
		c, err := New(Config{Backend: overviewBackend{}, Monitor: on})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(nethttp.MethodGet, "/ui/", nil)
		if err := c.overview(&req{w: rec, r: r, c: c}); err != nil {
			t.Fatal(err)
		}
		body := rec.Body.String()
		if off := strings.Contains(body, "monitor off"); off == on {
			t.Errorf("monitor %v: page says monitor off: %v", on, off)
		}
		if found := strings.Contains(body, "forged: 4 messages"); found != on {
			t.Errorf("monitor %v: finding shown: %v", on, found)
		}
	}
}

// flakyTokens fails token lookups while down, then knows one token.
type flakyTokens struct {
	overviewBackend
	down *bool
	tok  httpapi.Token
}

func (f flakyTokens) TokenByHash(_ context.Context, sum [32]byte) (httpapi.Token, error) {
	if *f.down {
		return httpapi.Token{}, errors.New("store unavailable")
	}
	if sum != f.tok.Hash {
		return httpapi.Token{}, domain.ErrUnknownToken
	}
	return f.tok, nil
}

// TestSessionSurvivesBackendFailure: a failed token lookup is a 503, not
// a logout; an unknown token is a logout.
func TestSessionSurvivesBackendFailure(t *testing.T) {
	down := false
	tok := httpapi.Token{Name: "ops", Role: httpapi.RoleOperator, Hash: sha256.Sum256([]byte("secret"))}
	c, err := New(Config{Backend: flakyTokens{down: &down, tok: tok}})
	if err != nil {
		t.Fatal(err)
	}
	id := c.sessions.create(tok.Hash, tok.Name, tok.Role)
	get := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest(nethttp.MethodGet, "/ui/", nil)
		r.AddCookie(&nethttp.Cookie{Name: cookieName, Value: id})
		rec := httptest.NewRecorder()
		c.Handler().ServeHTTP(rec, r)
		return rec
	}
	if rec := get(); rec.Code != nethttp.StatusOK {
		t.Fatalf("overview = %d", rec.Code)
	}
	down = true
	if rec := get(); rec.Code != nethttp.StatusServiceUnavailable || rec.Header().Get("Set-Cookie") != "" {
		t.Fatalf("with the backend down: %d, Set-Cookie %q", rec.Code, rec.Header().Get("Set-Cookie"))
	}
	down = false
	if rec := get(); rec.Code != nethttp.StatusOK {
		t.Fatalf("the session did not survive the failure: %d", rec.Code)
	}
	c.sessions.m[sha256.Sum256([]byte(id))].tokenHash = [32]byte{9}
	if rec := get(); rec.Code != nethttp.StatusSeeOther || !strings.Contains(rec.Header().Get("Location"), "revoked") {
		t.Fatalf("an unknown token: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
}

// TestLoginMessageNotFromTheLink: the login page shows only the console's
// own reasons for sending a browser there; text put in the link by
// somebody else (a phishing mail pointing at the real console: "paste
// your admin token at ...") is not shown.
func TestLoginMessageNotFromTheLink(t *testing.T) {
	c, err := New(Config{Backend: flakyTokens{down: new(bool)}})
	if err != nil {
		t.Fatal(err)
	}
	page := func(m string) string {
		r := httptest.NewRequest(nethttp.MethodGet, "/ui/login?m="+url.QueryEscape(m), nil)
		rec := httptest.NewRecorder()
		c.Handler().ServeHTTP(rec, r)
		if rec.Code != nethttp.StatusOK {
			t.Fatalf("login page = %d", rec.Code)
		}
		return rec.Body.String()
	}
	const phish = "Security update: your token expired, confirm it at evil.example"
	if body := page(phish); strings.Contains(body, "evil.example") {
		t.Fatal("the login page shows a message chosen by the link's author")
	}
	for _, m := range []string{errRevoked.Error(), errEnded.Error(), msgLoggedOut} {
		if body := page(m); !strings.Contains(body, template.HTMLEscapeString(m)) {
			t.Errorf("the console's own message %q is not shown", m)
		}
	}
}

// blockingStream is a backend whose live stream sends nothing until the
// request ends.
type blockingStream struct{ flakyTokens }

func (blockingStream) Subscribe(ctx context.Context, _ uint64, _ func(httpapi.Event) error) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestStreamsPerToken: the cap on live streams holds per token, not per
// session: logging in again with the same token (a script can log in as
// often as it likes) gives no more streams, each of which holds a
// subscription to the store.
func TestStreamsPerToken(t *testing.T) {
	tok := httpapi.Token{Name: "viewer", Role: httpapi.RoleReader, Hash: sha256.Sum256([]byte("secret"))}
	c, err := New(Config{Backend: blockingStream{flakyTokens{down: new(bool), tok: tok}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func(session string) *nethttp.Response {
		r, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodGet, srv.URL+"/ui/events/stream", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.AddCookie(&nethttp.Cookie{Name: cookieName, Value: session})
		resp, err := srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	first := c.sessions.create(tok.Hash, tok.Name, tok.Role)
	for i := range maxStreams {
		resp := open(first)
		defer resp.Body.Close()
		if resp.StatusCode != nethttp.StatusOK {
			t.Fatalf("stream %d: %d", i, resp.StatusCode)
		}
		// The stream is counted once its first line arrives.
		if _, err := resp.Body.Read(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}
	second := c.sessions.create(tok.Hash, tok.Name, tok.Role)
	resp := open(second)
	defer resp.Body.Close()
	if resp.StatusCode != nethttp.StatusTooManyRequests {
		t.Fatalf("a new session of the same token opened stream %d: %d", maxStreams+1, resp.StatusCode)
	}
}
