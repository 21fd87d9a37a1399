package console_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	nethttp "net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/testwait"
	"github.com/e4c2/e4c2/projections"
)

// session is a Go HTTP client logged in to the console: what a script
// crafting its own requests can do with a token.
type session struct {
	t    *testing.T
	base string
	hc   *nethttp.Client
}

func newSession(t *testing.T, base string) *session {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := &nethttp.Client{Jar: jar, CheckRedirect: func(*nethttp.Request, []*nethttp.Request) error { return nethttp.ErrUseLastResponse }}
	return &session{t: t, base: base, hc: hc}
}

func (s *session) get(path string) (*nethttp.Response, string) {
	s.t.Helper()
	resp, err := s.hc.Get(s.base + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (s *session) post(path string, form url.Values, header map[string]string) (*nethttp.Response, string) {
	s.t.Helper()
	req, err := nethttp.NewRequest(nethttp.MethodPost, s.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf reads a page's CSRF token.
func (s *session) csrf(path string) string {
	s.t.Helper()
	_, body := s.get(path)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		s.t.Fatalf("no CSRF token on %s", path)
	}
	return m[1]
}

// login logs in through the form, as a browser would.
func (s *session) login(token string) {
	s.t.Helper()
	tok := s.csrf("/ui/login")
	resp, _ := s.post("/ui/login", url.Values{"csrf": {tok}, "token": {token}}, nil)
	if resp.StatusCode != nethttp.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		s.t.Fatalf("login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestConsoleSecurity checks, with crafted requests, what the browser
// test cannot see: headers and cookie flags, that a reader cannot submit
// a mutating form, the CSRF and cross-site checks, confirmations, and
// attribution of console actions to the token.
func TestConsoleSecurity(t *testing.T) {
	var logs lockedBuffer
	srv, adminToken := startServerWith(t, nil, &logs)
	svc := srv.Service()
	ctx := context.Background()
	base := "http://" + srv.HTTPAddr()
	key, _ := svc.Suite().GenerateKey()
	if _, err := svc.NewClient(ctx, c2.Origin{Actor: "test"}, c2.ByName("dev-1"), key, domain.RoleBoth); err != nil {
		t.Fatal(err)
	}
	readerSecret, _, err := svc.CreateToken(ctx, c2.Origin{Actor: "test"}, "viewer", domain.TokenReader)
	if err != nil {
		t.Fatal(err)
	}

	anon := newSession(t, base)
	resp, _ := anon.get("/")
	if resp.StatusCode != nethttp.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("GET / = %d to %q, want a redirect to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = anon.get("/ui/clients")
	if resp.StatusCode != nethttp.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/login") {
		t.Fatalf("a page without session = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = anon.get("/ui/login")
	h := resp.Header
	for name, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
		"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'none'") ||
		strings.Contains(csp, "unsafe") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q is not strict", csp)
	}
	// A login without the form's CSRF token is refused.
	resp, _ = newSession(t, base).post("/ui/login", url.Values{"token": {adminToken}, "csrf": {"x"}}, nil)
	if resp.StatusCode != nethttp.StatusForbidden || len(resp.Cookies()) > 0 && resp.Cookies()[0].Name == "e4c2_session" && resp.Cookies()[0].Value != "" {
		t.Fatalf("login without CSRF: %d", resp.StatusCode)
	}
	// A wrong token gets no session.
	bad := newSession(t, base)
	tok := bad.csrf("/ui/login")
	if resp, _ := bad.post("/ui/login", url.Values{"csrf": {tok}, "token": {"e4c2_nope"}}, nil); resp.StatusCode != nethttp.StatusUnauthorized {
		t.Fatalf("login with a wrong token: %d", resp.StatusCode)
	}

	// The session cookie: HttpOnly, SameSite=Strict, scoped, bounded.
	admin := newSession(t, base)
	tok = admin.csrf("/ui/login")
	resp, _ = admin.post("/ui/login", url.Values{"csrf": {tok}, "token": {adminToken}}, nil)
	var sc *nethttp.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "e4c2_session" {
			sc = c
		}
	}
	if sc == nil || !sc.HttpOnly || sc.SameSite != nethttp.SameSiteStrictMode || sc.Path != "/ui/" || sc.MaxAge <= 0 || sc.MaxAge > 24*3600 {
		t.Fatalf("session cookie %+v", sc)
	}
	if strings.Contains(sc.Value, adminToken) {
		t.Fatal("the session cookie holds the token")
	}

	// Search: by name, any case, or by id prefix.
	for _, q := range []string{"DEV", "v-1", domain.ClientID("dev-1").String()[:8]} {
		if _, page := admin.get("/ui/clients?q=" + url.QueryEscape(q)); !strings.Contains(page, `data-client="dev-1"`) {
			t.Errorf("search %q does not find dev-1", q)
		}
	}
	if _, page := admin.get("/ui/clients?q=nobody"); strings.Contains(page, `data-client="dev-1"`) {
		t.Error("search nobody finds dev-1")
	}

	// Wrong input is a 400 or a 404 page, not a server error.
	for path, want := range map[string]int{"/ui/client?c=": nethttp.StatusBadRequest, "/ui/client?c=nobody": nethttp.StatusNotFound,
		"/ui/clients?cursor=x": nethttp.StatusBadRequest, "/ui/topic?t=nowhere": nethttp.StatusNotFound,
		"/ui/audit?from=yesterday": nethttp.StatusBadRequest, "/ui/nosuchpage": nethttp.StatusNotFound} {
		if resp, _ := admin.get(path); resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}

	// A reader cannot submit a mutating form, even with a valid CSRF token.
	reader := newSession(t, base)
	reader.login(readerSecret)
	rt := reader.csrf("/ui/clients")
	for path, form := range map[string]url.Values{
		"/ui/client/remove": {"client": {"dev-1"}, "confirm": {"yes"}},
		"/ui/client/attach": {"client": {"dev-1"}, "topic": {"t"}},
		"/ui/topics/new":    {"name": {"reader-topic"}},
		"/ui/c2key/rotate":  {"confirm": {"yes"}},
		"/ui/tokens/new":    {"name": {"escalate"}, "role": {"admin"}},
	} {
		form.Set("csrf", rt)
		if resp, _ := reader.post(path, form, nil); resp.StatusCode != nethttp.StatusForbidden {
			t.Errorf("reader POST %s = %d, want 403", path, resp.StatusCode)
		}
	}
	if _, err := svc.Client(c2.ByName("dev-1")); err != nil {
		t.Fatalf("a reader's post removed the client: %v", err)
	}
	if _, err := svc.Topic("reader-topic"); err == nil {
		t.Fatal("a reader's post created a topic")
	}
	if _, err := svc.Token("escalate"); err == nil {
		t.Fatal("a reader's post created a token")
	}

	// An admin without the CSRF token, or from another site, is refused.
	at := admin.csrf("/ui/clients")
	form := url.Values{"client": {"dev-1"}, "topic": {"plant"}}
	if _, err := svc.NewTopic(ctx, c2.Origin{Actor: "test"}, "plant"); err != nil {
		t.Fatal(err)
	}
	if resp, _ := admin.post("/ui/client/attach", form, nil); resp.StatusCode != nethttp.StatusForbidden {
		t.Errorf("POST without CSRF token = %d", resp.StatusCode)
	}
	form.Set("csrf", strings.Repeat("0", len(at)))
	if resp, _ := admin.post("/ui/client/attach", form, nil); resp.StatusCode != nethttp.StatusForbidden {
		t.Errorf("POST with a wrong CSRF token = %d", resp.StatusCode)
	}
	form.Set("csrf", at)
	for _, hdr := range []map[string]string{{"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}, {"Origin": "http://evil.example"}} {
		if resp, _ := admin.post("/ui/client/attach", form, hdr); resp.StatusCode != nethttp.StatusForbidden {
			t.Errorf("POST with %v = %d, want 403", hdr, resp.StatusCode)
		}
	}
	if ci, _ := svc.Client(c2.ByName("dev-1")); ci.Topics != 0 {
		t.Fatal("a refused post attached the client")
	}
	// The same post, same-origin with the token, works and is attributed
	// to the token, with the console's correlation id.
	if resp, _ := admin.post("/ui/client/attach", form, map[string]string{"Origin": base}); resp.StatusCode != nethttp.StatusSeeOther {
		t.Fatalf("attach = %d", resp.StatusCode)
	}
	es, _ := svc.Audit(projections.AuditQuery{Type: "topic.client_linked.v1"})
	if len(es) != 1 || es[0].Actor != "token:admin" || !strings.HasPrefix(es[0].CorrelationID, "ui-") {
		t.Fatalf("link attributed as %+v", es)
	}
	// A device never seen can be released from its page.
	if _, page := admin.get("/ui/client?c=dev-1"); !strings.Contains(page, `id="release"`) {
		t.Error("a never-seen client's page offers no release")
	}
	if resp, _ := admin.post("/ui/client/release", url.Values{"client": {"dev-1"}, "csrf": {at}}, nil); resp.StatusCode != nethttp.StatusSeeOther {
		t.Fatalf("release = %d", resp.StatusCode)
	}
	if _, page := admin.get("/ui/client?c=dev-1"); !strings.Contains(page, "never (released)") || strings.Contains(page, `id="release"`) {
		t.Error("a released client's page does not say so, or offers the release again")
	}
	// A destructive action without confirmation goes to its confirmation
	// page and changes nothing.
	resp, _ = admin.post("/ui/client/remove", url.Values{"client": {"dev-1"}, "csrf": {at}}, nil)
	if resp.StatusCode != nethttp.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/confirm?") {
		t.Fatalf("unconfirmed remove = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page := admin.get(resp.Header.Get("Location"))
	if !strings.Contains(page, "unlinked from 1 topic: plant") {
		t.Errorf("the confirmation does not name the change:\n%s", page)
	}
	if _, err := svc.Client(c2.ByName("dev-1")); err != nil {
		t.Fatal("an unconfirmed remove removed the client")
	}
	if strings.Contains(page, hex.EncodeToString(key)) {
		t.Fatal("a page shows the client's key")
	}
	// Removing a topic: the confirmation counts the devices; confirmed,
	// the topic goes.
	resp, _ = admin.post("/ui/topic/remove", url.Values{"topic": {"plant"}, "csrf": {at}}, nil)
	if _, page = admin.get(resp.Header.Get("Location")); !strings.Contains(page, "1 device will receive RemoveTopic for plant") {
		t.Errorf("the topic removal's confirmation does not count the devices:\n%s", page)
	}
	if _, err := svc.Topic("plant"); err != nil {
		t.Fatal("an unconfirmed topic removal removed the topic")
	}
	if resp, _ := admin.post("/ui/topic/remove", url.Values{"topic": {"plant"}, "csrf": {at}, "confirm": {"yes"}}, nil); resp.StatusCode != nethttp.StatusSeeOther {
		t.Fatalf("confirmed topic removal = %d", resp.StatusCode)
	}
	if _, err := svc.Topic("plant"); err == nil {
		t.Fatal("a confirmed topic removal left the topic")
	}

	// Revoking the token ends the session at its next request.
	if _, err := svc.RevokeToken(ctx, c2.Origin{Actor: "test"}, "viewer"); err != nil {
		t.Fatal(err)
	}
	resp, _ = reader.get("/ui/clients")
	if resp.StatusCode != nethttp.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "revoked") {
		t.Fatalf("after revocation: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Logging out ends the session too.
	if resp, _ := admin.post("/ui/logout", url.Values{"csrf": {at}}, nil); resp.StatusCode != nethttp.StatusSeeOther {
		t.Fatalf("logout = %d", resp.StatusCode)
	}
	// ... on the server: the old cookie, replayed, is worth nothing.
	replay := newSession(t, base)
	u, _ := url.Parse(base + "/ui/")
	replay.hc.Jar.SetCookies(u, []*nethttp.Cookie{{Name: sc.Name, Value: sc.Value, Path: "/ui/"}})
	if resp, _ := replay.get("/ui/"); resp.StatusCode != nethttp.StatusSeeOther {
		t.Fatalf("the cookie of a logged-out session still opens the overview (%d)", resp.StatusCode)
	}

	// One log line per console request, attributed, without a secret.
	log := logs.String()
	if !strings.Contains(log, `"method":"POST","path":"/ui/client/attach","status":303`) ||
		!strings.Contains(log, `"actor":"token:admin"`) {
		t.Errorf("no attributed access log line for the attach:\n%s", log)
	}
	for what, s := range map[string]string{"admin token": adminToken, "reader token": readerSecret,
		"session id": sc.Value, "CSRF token": at, "client key": hex.EncodeToString(key)} {
		if strings.Contains(log, s) {
			t.Errorf("the log shows the %s", what)
		}
	}
}

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestConsoleLoginThrottle: after ten failed logins from an address, its
// next login is refused (429) even with a good token, like the API's
// limit on invalid tokens.
func TestConsoleLoginThrottle(t *testing.T) {
	srv, adminToken := startServer(t)
	s := newSession(t, "http://"+srv.HTTPAddr())
	for i := 0; i < 10; i++ {
		tok := s.csrf("/ui/login")
		if resp, _ := s.post("/ui/login", url.Values{"csrf": {tok}, "token": {"e4c2_wrong"}}, nil); resp.StatusCode != nethttp.StatusUnauthorized {
			t.Fatalf("failed login %d = %d", i, resp.StatusCode)
		}
	}
	tok := s.csrf("/ui/login")
	resp, body := s.post("/ui/login", url.Values{"csrf": {tok}, "token": {adminToken}}, nil)
	if resp.StatusCode != nethttp.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "too many failed logins") {
		t.Fatalf("login after ten failures = %d", resp.StatusCode)
	}
}

// TestConsoleRuleForms: create with a compile error (422, the form again
// with the position), create, edit, pause, resume, through crafted posts.
func TestConsoleRuleForms(t *testing.T) {
	srv, adminToken := startServer(t)
	s := newSession(t, "http://"+srv.HTTPAddr())
	s.login(adminToken)
	csrf := s.csrf("/ui/rules/new")
	rule := url.Values{"csrf": {csrf}, "id": {"r1"}, "trigger_kind": {"event"}, "trigger": {`event.type ==`},
		"action": {"rotate_topic"}, "op": {"save"}, "description": {"first"}}
	resp, body := s.post("/ui/rules/save", rule, nil)
	if resp.StatusCode != nethttp.StatusUnprocessableEntity || !strings.Contains(body, "trigger.event: line 1, column") {
		t.Fatalf("a rule that does not compile = %d:\n%s", resp.StatusCode, body)
	}
	if !strings.Contains(body, `value="first"`) {
		t.Error("the form lost what was typed")
	}
	rule.Set("trigger", `event.type == "topic.created.v1"`)
	if resp, body := s.post("/ui/rules/save", rule, nil); resp.StatusCode != nethttp.StatusSeeOther {
		t.Fatalf("create = %d:\n%s", resp.StatusCode, body)
	}
	rule.Set("existing", "yes")
	rule.Set("description", "second")
	if resp, body := s.post("/ui/rules/save", rule, nil); resp.StatusCode != nethttp.StatusSeeOther {
		t.Fatalf("edit = %d:\n%s", resp.StatusCode, body)
	}
	if _, page := s.get("/ui/rule?id=r1"); !strings.Contains(page, "second") || !strings.Contains(page, `id="rule-pause"`) {
		t.Fatalf("the edited rule's page:\n%s", page)
	}
	for _, step := range []struct{ path, want string }{{"/ui/rule/pause", "rule-resume"}, {"/ui/rule/resume", "rule-pause"}} {
		if resp, _ := s.post(step.path, url.Values{"csrf": {csrf}, "id": {"r1"}}, nil); resp.StatusCode != nethttp.StatusSeeOther {
			t.Fatalf("%s = %d", step.path, resp.StatusCode)
		}
		if _, page := s.get("/ui/rule?id=r1"); !strings.Contains(page, `id="`+step.want+`"`) {
			t.Fatalf("after %s the page offers no %s", step.path, step.want)
		}
	}
	if _, page := s.get("/ui/rules"); !strings.Contains(page, `data-rule="r1"`) {
		t.Fatal("the rule is not listed")
	}
	// The rule fires on a new topic; its page shows the fire and its
	// outcome.
	if _, err := srv.Service().NewTopic(context.Background(), c2.Origin{Actor: "test"}, "fires/here"); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the fire and its outcome on the rule's page", func() bool {
		_, page := s.get("/ui/rule?id=r1")
		return strings.Contains(page, `data-type="rule.fired.v1"`) && strings.Contains(page, `data-type="rule.completed.v1"`)
	})
}
