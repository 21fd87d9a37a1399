package http

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	nethttp "net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/e4c2/e4c2/domain"
)

// Context keys set by the middleware.
const (
	ctxRequestID = "e4c2.request_id"
	ctxToken     = "e4c2.token"
)

// HeaderRequestID carries the request id in both directions.
const HeaderRequestID = "X-Request-ID"

func requestID(c echo.Context) string {
	id, _ := c.Get(ctxRequestID).(string)
	return id
}

// tokenOf returns the authenticated token (zero for public routes).
func tokenOf(c echo.Context) (Token, bool) {
	t, ok := c.Get(ctxToken).(Token)
	return t, ok
}

// caller builds the attribution passed to every backend operation.
func caller(c echo.Context) Caller {
	t, _ := tokenOf(c)
	return Caller{Actor: "token:" + t.Name, CorrelationID: requestID(c)}
}

// recoverMiddleware turns a handler panic into a 500. The panic value is
// not logged (it could hold anything); the stack is.
func (s *Server) recoverMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == nethttp.ErrAbortHandler {
					panic(r)
				}
				s.log.LogAttrs(c.Request().Context(), slog.LevelError, "panic in handler",
					slog.String("request_id", requestID(c)), slog.String("stack", string(debug.Stack())))
				err = errors.New("http: handler panicked")
			}
		}()
		return next(c)
	}
}

// validRequestID accepts client-supplied ids that are safe to log and echo.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9',
			b == '-', b == '_', b == '.', b == ':':
		default:
			return false
		}
	}
	return true
}

// requestIDMiddleware keeps a sane X-Request-ID or generates one; it becomes
// the correlation id of the events the request produces.
func (s *Server) requestIDMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(HeaderRequestID)
		if !validRequestID(id) {
			var b [16]byte
			_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
			id = hex.EncodeToString(b[:])
		}
		c.Set(ctxRequestID, id)
		c.Response().Header().Set(HeaderRequestID, id)
		return next(c)
	}
}

// logMiddleware writes one JSON line per request. It handles the error
// itself so the logged status is the one sent. It logs no body, no query
// string and no header (the token is in one).
func (s *Server) logMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		req := c.Request()
		attrs := []slog.Attr{
			slog.String("method", req.Method),
			slog.String("path", req.URL.Path),
			slog.String("route", c.Path()),
			slog.Int("status", c.Response().Status),
			slog.Float64("latency_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("request_id", requestID(c)),
			slog.Int64("bytes_out", c.Response().Size),
		}
		if t, ok := tokenOf(c); ok {
			attrs = append(attrs, slog.String("actor", "token:"+t.Name))
		}
		level := slog.LevelInfo
		if c.Response().Status >= 500 {
			level = slog.LevelError
		}
		s.log.LogAttrs(req.Context(), level, "http request", attrs...)
		return nil
	}
}

// bodyLimitMiddleware refuses declared oversize bodies at once and caps the
// rest while they are read (the decoder then sees *http.MaxBytesError).
func (s *Server) bodyLimitMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.ContentLength > s.cfg.BodyLimit {
			return &nethttp.MaxBytesError{Limit: s.cfg.BodyLimit}
		}
		if req.Body != nil {
			req.Body = nethttp.MaxBytesReader(c.Response(), req.Body, s.cfg.BodyLimit)
		}
		return next(c)
	}
}

var (
	errMissingToken = &apiError{status: nethttp.StatusUnauthorized, code: "missing_token", msg: "missing bearer token"}
	errBadToken     = &apiError{status: nethttp.StatusUnauthorized, code: "invalid_token", msg: "invalid or revoked token"}
)

// authMiddleware checks the bearer token on every non-public path. The
// backend looks the token up by the SHA-256 of the presented secret; the
// stored hash is then compared in constant time, so a lookup that returned
// the wrong record (or a timing difference in it) never authenticates.
func (s *Server) authMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.isPublic(c.Request().URL.Path) {
			return next(c)
		}
		h := c.Request().Header.Get(echo.HeaderAuthorization)
		scheme, secret, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "bearer") {
			return errMissingToken
		}
		secret = strings.TrimSpace(secret)
		if secret == "" {
			return errMissingToken
		}
		sum := sha256.Sum256([]byte(secret))
		tok, err := s.backend.TokenByHash(c.Request().Context(), sum)
		if err != nil {
			if errors.Is(err, domain.ErrUnknownToken) {
				return errBadToken
			}
			return fmt.Errorf("http: verifying token: %w", err)
		}
		if subtle.ConstantTimeCompare(tok.Hash[:], sum[:]) != 1 || !tok.Role.Valid() {
			return errBadToken
		}
		c.Set(ctxToken, tok)
		return next(c)
	}
}

// roleMiddleware enforces the minimal role of the matched route. Unmatched
// paths (404/405) fall through to echo's not-found handlers.
func (s *Server) roleMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		need, ok := s.roles[c.Request().Method+" "+c.Path()]
		if !ok || need == "" {
			return next(c)
		}
		t, _ := tokenOf(c)
		if t.Role.rank() < need.rank() {
			return &apiError{status: nethttp.StatusForbidden, code: "forbidden",
				msg: fmt.Sprintf("role %s may not do this (needs %s)", t.Role, need)}
		}
		return next(c)
	}
}

// rateLimitMiddleware applies one token bucket per API token.
func (s *Server) rateLimitMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		t, ok := tokenOf(c)
		if !ok || s.limiter == nil {
			return next(c)
		}
		if wait, allowed := s.limiter.allow(t.Name); !allowed {
			secs := int(math.Ceil(wait.Seconds()))
			c.Response().Header().Set("Retry-After", strconv.Itoa(max(1, secs)))
			return &apiError{status: nethttp.StatusTooManyRequests, code: "rate_limited",
				msg: "too many requests for this token"}
		}
		return next(c)
	}
}

// rateLimiter is a set of token buckets keyed by API token name.
type rateLimiter struct {
	mu      sync.Mutex
	rate    float64 // tokens per second
	burst   float64
	now     func() time.Time
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64, burst int, now func() time.Time) *rateLimiter {
	return &rateLimiter{rate: rate, burst: float64(burst), now: now, buckets: map[string]*bucket{}}
}

// allow takes one token from key's bucket, or says how long until one is
// available.
func (l *rateLimiter) allow(key string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[key]
	if !ok {
		// Token names are few (created by admins), so the map stays small.
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(l.burst, b.tokens+el*l.rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second)), false
}
