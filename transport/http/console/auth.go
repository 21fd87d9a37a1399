package console

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"math"
	nethttp "net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/e4c2/e4c2/domain"
	httpapi "github.com/e4c2/e4c2/transport/http"
)

// route is one console page or action: the role it needs ("" = no
// session) and its handler. Every non-GET route needs the CSRF token.
type route struct {
	method, path string
	role         httpapi.Role
	h            func(*req) error
}

// req is one request with its session.
type req struct {
	w   nethttp.ResponseWriter
	r   *nethttp.Request
	s   view
	c   *Console
	cid string // correlation id of the events the request produces
}

// caller attributes an action to the token that logged in.
func (q *req) caller() httpapi.Caller {
	return httpapi.Caller{Actor: "token:" + q.s.TokenName, CorrelationID: q.cid}
}

// done ends an action: a message for the next page and a redirect (303,
// so a reload does not post again).
func (q *req) done(to, msg string) error {
	q.c.sessions.setFlash(q.s.key, msg, false)
	nethttp.Redirect(q.w, q.r, to, nethttp.StatusSeeOther)
	return nil
}

// failed ends an action that the service refused: the error is shown on
// the next page. Service errors hold no key material.
func (q *req) failed(to string, err error) error {
	q.c.sessions.setFlash(q.s.key, err.Error(), true)
	nethttp.Redirect(q.w, q.r, to, nethttp.StatusSeeOther)
	return nil
}

// form returns a trimmed form value.
func (q *req) form(name string) string { return strings.TrimSpace(q.r.PostFormValue(name)) }

// query returns a trimmed query value.
func (q *req) query(name string) string { return strings.TrimSpace(q.r.URL.Query().Get(name)) }

// statusError is an error page with its status.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

var (
	errCrossSite = &statusError{nethttp.StatusForbidden, "cross-site request refused"}
	errReadOnly  = &statusError{nethttp.StatusForbidden, "the server runs --read-only (forensics): no change is accepted"}
	errCSRF      = &statusError{nethttp.StatusForbidden, "the form has expired or was not sent by this console (CSRF check failed): reload the page and try again"}
)

// crossSite says whether a state-changing request comes from another
// site: the browser's Sec-Fetch-Site when it sends one, else the Origin
// header ("null", sent under Referrer-Policy no-referrer, proves nothing
// either way and leaves the decision to the CSRF token).
func crossSite(r *nethttp.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site != "same-origin" && site != "none"
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		return false
	}
	u, err := url.Parse(origin)
	return err != nil || !strings.EqualFold(u.Host, r.Host)
}

// sameSecret compares two secrets in constant time.
func sameSecret(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// wrap turns a route into a handler: cross-site check, session, token
// (looked up again on every request, so a revoked token logs out at
// once), role, CSRF.
func (c *Console) wrap(rt route) nethttp.Handler {
	return nethttp.HandlerFunc(func(rw nethttp.ResponseWriter, r *nethttp.Request) {
		w := &statusWriter{ResponseWriter: rw}
		q := &req{w: w, r: r, c: c, cid: "ui-" + randomToken()[:32]}
		start := time.Now()
		defer func() { c.logRequest(q, w.status, time.Since(start)) }()
		mutating := r.Method != nethttp.MethodGet && r.Method != nethttp.MethodHead
		if mutating && crossSite(r) {
			c.fail(q, errCrossSite)
			return
		}
		if rt.role == "" {
			c.fail(q, rt.h(q))
			return
		}
		v, ok, msg := c.authenticate(r)
		if errors.Is(msg, errUnavailable) {
			c.fail(q, errUnavailable)
			return
		}
		if !ok {
			c.toLogin(q, msg.Error())
			return
		}
		v.ReadOnly = c.cfg.ReadOnly
		q.s = v
		if mutating && c.cfg.ReadOnly && rt.role != httpapi.RoleReader {
			c.fail(q, errReadOnly)
			return
		}
		if rank(v.Role) < rank(rt.role) {
			c.fail(q, &statusError{nethttp.StatusForbidden, fmt.Sprintf("role %s may not do this (needs %s)", v.Role, rt.role)})
			return
		}
		if mutating {
			r.Body = nethttp.MaxBytesReader(w, r.Body, 1<<20)
			if err := r.ParseForm(); err != nil {
				c.fail(q, &statusError{nethttp.StatusBadRequest, "bad form"})
				return
			}
			if !sameSecret(r.PostFormValue("csrf"), v.CSRF) {
				c.fail(q, errCSRF)
				return
			}
		}
		c.fail(q, rt.h(q))
	})
}

// statusWriter remembers the status for the access log; Unwrap lets
// http.ResponseController reach the connection (the live stream).
type statusWriter struct {
	nethttp.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = nethttp.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() nethttp.ResponseWriter { return w.ResponseWriter }

// logRequest writes one line per console request, like the API's access
// log: method, path (no query string, no form, no cookie), status,
// latency, the request's correlation id and the actor.
func (c *Console) logRequest(q *req, status int, took time.Duration) {
	attrs := []slog.Attr{
		slog.String("method", q.r.Method),
		slog.String("path", q.r.URL.Path),
		slog.Int("status", status),
		slog.Float64("latency_ms", float64(took.Microseconds())/1000),
		slog.String("request_id", q.cid),
	}
	if q.s.TokenName != "" {
		attrs = append(attrs, slog.String("actor", "token:"+q.s.TokenName))
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	c.log.LogAttrs(q.r.Context(), level, "console request", attrs...)
}

// Why authenticate let no session through (its message is the login
// page's), or errUnavailable when it could not tell.
var (
	errNoSession   = errors.New("")
	errEnded       = errors.New("your session has ended; log in again")
	errRevoked     = errors.New("your token was revoked or is no longer valid; log in again")
	errUnavailable = &statusError{nethttp.StatusServiceUnavailable, "the server could not check your token; try again"}
)

// authenticate finds the request's session and checks its token. When it
// lets nothing through, the error says why: errNoSession, errEnded,
// errRevoked (the session is gone), or errUnavailable when the backend
// failed (the session is kept).
func (c *Console) authenticate(r *nethttp.Request) (view, bool, error) {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return view{}, false, errNoSession
	}
	s, key, ok := c.sessions.get(ck.Value)
	if !ok {
		return view{}, false, errEnded
	}
	tok, err := c.api.TokenByHash(r.Context(), s.tokenHash)
	if err != nil && !errors.Is(err, domain.ErrUnknownToken) {
		c.log.LogAttrs(r.Context(), slog.LevelError, "console: checking a session's token", slog.String("error", err.Error()))
		return view{}, false, errUnavailable
	}
	if err != nil || subtle.ConstantTimeCompare(tok.Hash[:], s.tokenHash[:]) != 1 || !tok.Role.Valid() {
		c.sessions.remove(key)
		return view{}, false, errRevoked
	}
	if tok.Role != s.role {
		c.sessions.setRole(key, tok.Role)
	}
	return view{key: key, tokenHash: s.tokenHash, TokenName: tok.Name, Role: tok.Role, CSRF: s.csrf}, true, nil
}

// toLogin sends a request without a live session to the login page.
func (c *Console) toLogin(q *req, msg string) {
	nethttp.SetCookie(q.w, c.cookie(cookieName, "", -1))
	to := Prefix + "login"
	if msg != "" {
		to += "?m=" + url.QueryEscape(msg)
	}
	if q.r.Method != nethttp.MethodGet {
		c.fail(q, &statusError{nethttp.StatusUnauthorized, "not logged in"})
		return
	}
	nethttp.Redirect(q.w, q.r, to, nethttp.StatusSeeOther)
}

// cookie builds a console cookie: HttpOnly, SameSite=Strict, Secure over
// TLS, scoped to the console. maxAge < 0 deletes it.
func (c *Console) cookie(name, value string, maxAge int) *nethttp.Cookie {
	return &nethttp.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge, HttpOnly: true,
		Secure: c.cfg.TLS, SameSite: nethttp.SameSiteStrictMode}
}

// fail renders a handler's error, if any, as an error page.
func (c *Console) fail(q *req, err error) {
	if err == nil {
		return
	}
	status := nethttp.StatusInternalServerError
	var se *statusError
	switch {
	case errors.As(err, &se):
		status = se.status
	case isNotFound(err):
		status = nethttp.StatusNotFound
	case isBadInput(err):
		status = nethttp.StatusBadRequest
	default:
		c.log.LogAttrs(q.r.Context(), slog.LevelWarn, "console page failed",
			slog.String("path", q.r.URL.Path), slog.String("error", err.Error()))
	}
	c.renderStatus(q, status, "error", "Error", map[string]any{"Status": status, "Message": err.Error()})
}

// loginPage shows the login form with a fresh CSRF cookie, and why the
// console sent the browser there: one of its own messages only, never
// text from the link (anybody can send a link to the real console).
func (c *Console) loginPage(q *req) error {
	msg := q.query("m")
	switch msg {
	case errEnded.Error(), errRevoked.Error(), msgLoggedOut:
	default:
		msg = ""
	}
	return c.showLogin(q, msg, nethttp.StatusOK)
}

func (c *Console) showLogin(q *req, msg string, status int) error {
	tok := randomToken()
	nethttp.SetCookie(q.w, c.cookie(loginCookie, tok, 600))
	c.renderStatus(q, status, "login", "Log in", map[string]any{"LoginCSRF": tok, "Message": msg})
	return nil
}

// login exchanges an API token for a session.
func (c *Console) login(q *req) error {
	r := q.r
	ip := httpapi.PeerIP(r)
	if wait, blocked := c.loginFail.Blocked(ip); blocked {
		q.w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
		return c.showLogin(q, "too many failed logins from this address; retry later", nethttp.StatusTooManyRequests)
	}
	r.Body = nethttp.MaxBytesReader(q.w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return &statusError{nethttp.StatusBadRequest, "bad form"}
	}
	ck, err := r.Cookie(loginCookie)
	if err != nil || !sameSecret(r.PostFormValue("csrf"), ck.Value) {
		return c.showLogin(q, errCSRF.msg, nethttp.StatusForbidden)
	}
	secret := strings.TrimSpace(r.PostFormValue("token"))
	if secret == "" {
		return c.showLogin(q, "enter an API token", nethttp.StatusUnauthorized)
	}
	sum := sha256.Sum256([]byte(secret))
	tok, err := c.api.TokenByHash(r.Context(), sum)
	if err != nil || subtle.ConstantTimeCompare(tok.Hash[:], sum[:]) != 1 || !tok.Role.Valid() {
		c.loginFail.Fail(ip)
		return c.showLogin(q, "invalid or revoked token", nethttp.StatusUnauthorized)
	}
	id := c.sessions.create(sum, tok.Name, tok.Role)
	nethttp.SetCookie(q.w, c.cookie(loginCookie, "", -1))
	nethttp.SetCookie(q.w, c.cookie(cookieName, id, int(c.cfg.SessionTTL.Seconds())))
	nethttp.Redirect(q.w, r, Prefix, nethttp.StatusSeeOther)
	return nil
}

// msgLoggedOut is the login page's message after a logout.
const msgLoggedOut = "logged out"

// logout ends the session.
func (c *Console) logout(q *req) error {
	c.sessions.remove(q.s.key)
	nethttp.SetCookie(q.w, c.cookie(cookieName, "", -1))
	nethttp.Redirect(q.w, q.r, Prefix+"login?m="+url.QueryEscape(msgLoggedOut), nethttp.StatusSeeOther)
	return nil
}
