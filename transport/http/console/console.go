package console

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	nethttp "net/http"
	"sync"
	"time"

	"github.com/e4c2/e4c2/projections"
	httpapi "github.com/e4c2/e4c2/transport/http"
)

// Prefix is where the console is mounted on the API listener.
const Prefix = "/ui/"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config wires the console to the C2. Backend is required; every other
// field is optional and switches a part off when nil.
type Config struct {
	// Backend is the same backend the JSON API uses.
	Backend httpapi.Backend
	// Rules serves the rule pages (nil: "no automation engine").
	Rules httpapi.RuleBackend
	// Ready reports the store's and the broker's health (the API's /readyz).
	Ready func(context.Context) error
	// Position is the projections' global position (recent events and
	// the live stream start from it).
	Position func() uint64
	// AsOf rebuilds the key state as of a time or a log position,
	// read-only (time travel).
	AsOf func(ctx context.Context, at projections.AsOf) (*projections.KeyState, uint64, error)
	// Monitor says the traffic monitor runs: the overview then lists its
	// latest findings (monitor.finding.v1 in the audit); otherwise it says
	// "monitor off".
	Monitor bool
	// TLS marks the session cookie Secure and sends Strict-Transport-Security.
	TLS bool
	// ReadOnly (a server started --read-only) refuses every change with a
	// page and offers none; login, logout and dry runs still work.
	ReadOnly bool
	// LoginFailLimit is how many failed logins one source address may make
	// within LoginFailWindow before its login attempts get 429 until the
	// window ends (default 10 per minute; negative: no limit), like the
	// API's limit on invalid tokens.
	LoginFailLimit  int
	LoginFailWindow time.Duration
	// SessionTTL bounds a session's lifetime (default 8 h); SessionIdle ends
	// a session unused for that long (default 30 min).
	SessionTTL  time.Duration
	SessionIdle time.Duration
	// Heartbeat is the interval of comment lines on the live event stream
	// (default 15 s).
	Heartbeat time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives warnings (never keys, tokens or form values).
	Logger *slog.Logger
}

// Console is the web console. Handler serves it; Close ends the live
// streams (register it with http.Server.RegisterOnShutdown).
type Console struct {
	cfg       Config
	api       httpapi.Backend
	log       *slog.Logger
	sessions  *sessionStore
	loginFail *httpapi.FailLimiter // nil: no limit
	pages     map[string]*template.Template
	mux       *nethttp.ServeMux
	static    nethttp.Handler
	closeOnce sync.Once
	done      chan struct{}

	replays chan struct{} // time-travel replays running at once (buffer = limit)

	streamsMu sync.Mutex
	streams   map[[32]byte]int // open live streams per token hash
}

// New builds the console.
func New(cfg Config) (*Console, error) {
	if cfg.Backend == nil {
		return nil, errors.New("console: nil backend")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = 30 * time.Minute
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LoginFailLimit == 0 {
		cfg.LoginFailLimit = 10
	}
	if cfg.LoginFailWindow <= 0 {
		cfg.LoginFailWindow = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{cfg: cfg, api: cfg.Backend, log: cfg.Logger, done: make(chan struct{}),
		sessions: newSessionStore(cfg.SessionTTL, cfg.SessionIdle, cfg.Now),
		replays:  make(chan struct{}, maxReplays), streams: map[[32]byte]int{}}
	if cfg.LoginFailLimit > 0 {
		c.loginFail = httpapi.NewFailLimiter(cfg.LoginFailLimit, cfg.LoginFailWindow, cfg.Now)
	}
	pages, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	c.pages = pages
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("console: static assets: %w", err)
	}
	c.static = nethttp.StripPrefix(Prefix+"static/", nethttp.FileServerFS(sub))
	c.mux = nethttp.NewServeMux()
	for _, r := range c.routes() {
		c.mux.Handle(r.method+" "+r.path, c.wrap(r))
	}
	c.mux.HandleFunc("GET "+Prefix+"static/", c.serveStatic)
	return c, nil
}

// Handler serves every path under Prefix.
func (c *Console) Handler() nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		c.securityHeaders(w, r)
		c.mux.ServeHTTP(w, r)
	})
}

// Close ends the live event streams; safe to call more than once.
func (c *Console) Close() { c.closeOnce.Do(func() { close(c.done) }) }

// Mount returns a handler that serves the console under Prefix, redirects
// the root to it and hands every other path to api.
func Mount(c *Console, api nethttp.Handler) nethttp.Handler {
	ui := c.Handler()
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		switch {
		case r.URL.Path == "/" || r.URL.Path == "/ui":
			nethttp.Redirect(w, r, Prefix, nethttp.StatusFound)
		case len(r.URL.Path) >= len(Prefix) && r.URL.Path[:len(Prefix)] == Prefix:
			ui.ServeHTTP(w, r)
		default:
			api.ServeHTTP(w, r)
		}
	})
}

// csp allows script, style, images and connections (the event stream,
// the page refresh) from the console's own origin only: no inline script
// or style, no plug-ins, no framing, forms only to itself.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// securityHeaders are the API's (transport/http/hardening.go) with a CSP
// that lets the console's own assets run.
func (c *Console) securityHeaders(w nethttp.ResponseWriter, r *nethttp.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", csp)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if c.cfg.TLS {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
}

func (c *Console) serveStatic(w nethttp.ResponseWriter, r *nethttp.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	c.static.ServeHTTP(w, r)
}

// randomToken is 32 random bytes in hex.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
