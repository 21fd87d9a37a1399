package http

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/e4c2/e4c2/transport/http/apitypes"
)

// Config tunes the API. The zero value is usable: every zero field takes
// the default documented on it.
type Config struct {
	// BodyLimit caps request bodies in bytes (default 1 MiB). Larger
	// bodies get 413.
	BodyLimit int64
	// RateLimit is the steady number of requests per second allowed per
	// token (default 1000: it stops a runaway script, not a busy
	// automation); RateBurst the bucket size (default 2×RateLimit, at
	// least 1). A negative RateLimit disables rate limiting.
	RateLimit float64
	RateBurst int
	// DefaultPageSize (default 100) and MaxPageSize (default 1000) bound
	// list pages; a larger limit is clamped to MaxPageSize.
	DefaultPageSize int
	MaxPageSize     int
	// Heartbeat is the interval of SSE comment lines that keep idle
	// streams (and the proxies in front of them) alive (default 15 s).
	Heartbeat time.Duration
	// StreamWriteTimeout bounds each SSE write (default 30 s); the stream
	// extends its own write deadline so a server-wide WriteTimeout does not
	// cut long-lived streams.
	StreamWriteTimeout time.Duration
	// StreamMaxLifetime ends an SSE stream after this long (default 1 h);
	// the client reconnects with Last-Event-ID and its token is checked
	// anew. StreamTokenCheck is how often an open stream checks that its
	// token is still live (default 5 s; a token.revoked.v1 on the stream
	// checks at once). MaxStreamsPerToken caps the streams open at once
	// with one token (default 10, negative: no cap); the next gets 429.
	StreamMaxLifetime  time.Duration
	StreamTokenCheck   time.Duration
	MaxStreamsPerToken int
	// Metrics, if set, is mounted at GET /metrics. It is public unless
	// MetricsAuth is set, in which case a reader token is required.
	Metrics     nethttp.Handler
	MetricsAuth bool
	// Ready, if set, backs GET /readyz (e.g. checks store and broker);
	// nil means always ready.
	Ready func(context.Context) error
	// Now is the clock of the rate limiter (default time.Now).
	Now func() time.Time
	// Rules, if set, serves the /rules routes (usually NewEngineRules
	// around the automation engine). Nil: the routes stay registered and
	// documented but answer 501 "rules_unavailable".
	Rules RuleBackend
	// TLS says the API is served over TLS: responses then carry
	// Strict-Transport-Security.
	TLS bool
	// AuthFailLimit is how many requests with an invalid token one source
	// address may send within AuthFailWindow before its requests get 429
	// until the window ends (default 10 per minute; negative: no limit).
	AuthFailLimit  int
	AuthFailWindow time.Duration
	// DisableCryptoHelpers turns off the protect/unprotect helper routes
	// (403 "crypto_helpers_disabled"): without them no token can use the
	// C2 to encrypt or decrypt with a topic key.
	DisableCryptoHelpers bool
	// Monitor, if set, is this instance's traffic monitor: GET /monitor
	// shows its counters and GET /findings says it runs. Nil: off.
	Monitor MonitorStats
}

func (c Config) withDefaults() (Config, error) {
	if c.BodyLimit == 0 {
		c.BodyLimit = 1 << 20
	}
	if c.BodyLimit < 0 {
		return c, fmt.Errorf("http: body limit %d must be positive", c.BodyLimit)
	}
	if c.RateLimit == 0 {
		c.RateLimit = 1000
	}
	if c.RateBurst == 0 {
		c.RateBurst = max(1, int(2*c.RateLimit))
	}
	if c.RateBurst < 0 {
		return c, fmt.Errorf("http: rate burst %d must be positive", c.RateBurst)
	}
	if c.DefaultPageSize == 0 {
		c.DefaultPageSize = 100
	}
	if c.MaxPageSize == 0 {
		c.MaxPageSize = 1000
	}
	if c.DefaultPageSize < 1 || c.MaxPageSize < c.DefaultPageSize {
		return c, fmt.Errorf("http: page sizes default %d, max %d: need 1 <= default <= max", c.DefaultPageSize, c.MaxPageSize)
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.StreamWriteTimeout == 0 {
		c.StreamWriteTimeout = 30 * time.Second
	}
	if c.Heartbeat < 0 || c.StreamWriteTimeout < 0 {
		return c, errors.New("http: heartbeat and stream write timeout must be positive")
	}
	if err := c.streamDefaults(); err != nil {
		return c, err
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.AuthFailLimit == 0 {
		c.AuthFailLimit = 10
	}
	if c.AuthFailWindow == 0 {
		c.AuthFailWindow = time.Minute
	}
	if c.AuthFailWindow < 0 {
		return c, errors.New("http: auth failure window must be positive")
	}
	return c, nil
}

// Server is the HTTP API. Its Handler is mounted by the composition root
// on an http.Server with explicit timeouts.
type Server struct {
	cfg     Config
	backend Backend
	log     *slog.Logger
	echo    *echo.Echo
	routes  []route
	roles   map[string]Role // "METHOD /path/:param" -> minimal role
	limiter *rateLimiter
	// authFails throttles invalid tokens per source address (nil: off).
	authFails *FailLimiter
	openapi   []byte

	streams streamCounter // open SSE streams per token (sse.go)

	closeOnce sync.Once
	done      chan struct{} // closed by Close: ends SSE streams
}

// New builds the API around backend. logger receives one JSON line per
// request (never bodies, keys or tokens); nil discards logs.
func New(cfg Config, backend Backend, logger *slog.Logger) (*Server, error) {
	if backend == nil {
		return nil, errors.New("http: nil backend")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:     cfg,
		backend: backend,
		log:     logger,
		roles:   map[string]Role{},
		done:    make(chan struct{}),
	}
	if cfg.RateLimit > 0 {
		s.limiter = newRateLimiter(cfg.RateLimit, cfg.RateBurst, cfg.Now)
	}
	if cfg.AuthFailLimit > 0 {
		s.authFails = NewFailLimiter(cfg.AuthFailLimit, cfg.AuthFailWindow, cfg.Now)
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	e.Use(s.securityHeadersMiddleware, s.requestIDMiddleware, s.logMiddleware, s.recoverMiddleware,
		s.bodyLimitMiddleware, s.authFailMiddleware, s.authMiddleware, s.rateLimitMiddleware, s.roleMiddleware)

	s.routes = s.routeTable()
	for _, r := range s.routes {
		e.Add(r.method, r.path, r.handler)
		s.roles[r.method+" "+r.path] = r.role
	}
	s.echo = e
	doc, err := s.buildOpenAPI()
	if err != nil {
		return nil, fmt.Errorf("http: building openapi document: %w", err)
	}
	s.openapi = doc
	return s, nil
}

// Handler returns the API as an http.Handler.
func (s *Server) Handler() nethttp.Handler { return s.echo }

// Close ends the SSE streams in progress so that http.Server.Shutdown does
// not wait for them; register it with http.Server.RegisterOnShutdown. It is
// safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
}

// isPublic reports whether a path needs no token.
func (s *Server) isPublic(path string) bool {
	switch path {
	case "/healthz", "/readyz":
		return true
	case "/metrics":
		return s.cfg.Metrics != nil && !s.cfg.MetricsAuth
	}
	return false
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(nethttp.StatusOK, apitypes.Status{Status: "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(c.Request().Context()); err != nil {
			s.log.LogAttrs(c.Request().Context(), slog.LevelWarn, "not ready",
				slog.String("request_id", requestID(c)), slog.String("error", err.Error()))
			return &apiError{status: nethttp.StatusServiceUnavailable, code: "not_ready", msg: "not ready", err: err}
		}
	}
	return c.JSON(nethttp.StatusOK, apitypes.Status{Status: "ready"})
}

func (s *Server) metrics(c echo.Context) error {
	s.cfg.Metrics.ServeHTTP(c.Response(), c.Request())
	return nil
}

func (s *Server) openapiDoc(c echo.Context) error {
	return c.Blob(nethttp.StatusOK, echo.MIMEApplicationJSON, s.openapi)
}
