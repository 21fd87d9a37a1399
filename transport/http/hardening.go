package http

import (
	"errors"
	"math"
	"net"
	nethttp "net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// securityHeadersMiddleware sets the headers that keep a browser from
// doing anything clever with an API response: it is JSON (or text) for
// programs, never a page to sniff, frame, run scripts in or cache. They are
// set before the handler runs, so error answers (401, 404, 429...) carry
// them too. Cache-Control: no-store keeps keys and audit entries out of
// shared and browser caches on every route that needs a token; the public
// probes may be cached. Strict-Transport-Security is sent only over TLS
// (Config.TLS): over plain HTTP it would be ignored, and promising HTTPS
// from a lab listener would lock browsers out of it.
func (s *Server) securityHeadersMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		if !s.isPublic(c.Request().URL.Path) {
			h.Set("Cache-Control", "no-store")
		}
		if s.cfg.TLS {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		return next(c)
	}
}

var errAuthThrottled = &apiError{status: nethttp.StatusTooManyRequests, code: "auth_rate_limited",
	msg: "too many failed authentications from this address; retry later"}

// authFailMiddleware throttles token guessing per source address: after
// Config.AuthFailLimit requests with an invalid token within
// Config.AuthFailWindow, every request from that address that needs a
// token gets 429 (with Retry-After) until the window has passed, without
// its token being looked at, so a guesser learns nothing more. A missing
// token is not a guess and does not count; successful requests neither
// count nor are limited while the address is under its limit. The source
// is the TCP peer, never X-Forwarded-For (which the guesser writes).
func (s *Server) authFailMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.authFails == nil || s.isPublic(c.Request().URL.Path) {
			return next(c)
		}
		ip := PeerIP(c.Request())
		if wait, blocked := s.authFails.Blocked(ip); blocked {
			c.Response().Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
			return errAuthThrottled
		}
		err := next(c)
		if errors.Is(err, errBadToken) {
			s.authFails.Fail(ip)
		}
		return err
	}
}

// PeerIP is the host part of the request's TCP peer (never a header the
// client writes): the key of the failure limits.
func PeerIP(r *nethttp.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// maxAuthFailAddrs bounds the addresses remembered at once: a flood from
// many addresses evicts the oldest windows rather than growing the map.
const maxAuthFailAddrs = 1 << 16

// FailLimiter counts failed authentications per address in fixed windows:
// the first failure opens a window of length window; limit failures inside
// it block the address until it ends. The API (invalid tokens) and the web
// console (failed logins) each keep one. A nil *FailLimiter limits nothing.
type FailLimiter struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	now    func() time.Time
	addrs  map[string]*failWindow
}

type failWindow struct {
	start time.Time
	n     int
}

// NewFailLimiter returns a limiter of limit failures per window, reading
// the time from now.
func NewFailLimiter(limit int, window time.Duration, now func() time.Time) *FailLimiter {
	return &FailLimiter{limit: limit, window: window, now: now, addrs: map[string]*failWindow{}}
}

// Blocked says whether ip has used up its failures, and for how long.
func (l *FailLimiter) Blocked(ip string) (time.Duration, bool) {
	if l == nil {
		return 0, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.addrs[ip]
	if !ok {
		return 0, false
	}
	left := w.start.Add(l.window).Sub(l.now())
	if left <= 0 {
		delete(l.addrs, ip)
		return 0, false
	}
	return left, w.n >= l.limit
}

// Fail records one failed authentication from ip.
func (l *FailLimiter) Fail(ip string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	w, ok := l.addrs[ip]
	if ok && now.Sub(w.start) >= l.window {
		ok = false
	}
	if !ok {
		if len(l.addrs) >= maxAuthFailAddrs {
			l.prune(now)
		}
		w = &failWindow{start: now}
		l.addrs[ip] = w
	}
	w.n++
}

// prune drops the windows that have ended, then, if the map is still
// full, arbitrary ones (map order).
func (l *FailLimiter) prune(now time.Time) {
	for ip, w := range l.addrs {
		if now.Sub(w.start) >= l.window {
			delete(l.addrs, ip)
		}
	}
	for ip := range l.addrs {
		if len(l.addrs) < maxAuthFailAddrs {
			break
		}
		delete(l.addrs, ip)
	}
}

var errCryptoHelpersDisabled = &apiError{status: nethttp.StatusForbidden, code: "crypto_helpers_disabled",
	msg: "the protect/unprotect helpers are turned off on this server (--disable-crypto-helpers)"}

// cryptoHelper guards the protect/unprotect routes: with
// Config.DisableCryptoHelpers they answer 403 before reading the body, so
// no token, whatever its role, can use the C2 as an encryption or
// decryption oracle with a topic key. The routes stay registered (and in
// the OpenAPI document) so the refusal is explicit, not a 404.
func (s *Server) cryptoHelper(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.cfg.DisableCryptoHelpers {
			return errCryptoHelpersDisabled
		}
		return h(c)
	}
}
