package http

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/transport/http/apitypes"
)

// exchange is one request/response pair kept for the leak scan.
type exchange struct {
	method, path string
	status       int
	body         []byte
}

// harness runs the real echo handler over a fake backend.
type harness struct {
	t                   testing.TB
	f                   *fakeBackend
	s                   *Server
	admin, oper, reader string
	logs                *syncBuffer
	mu                  sync.Mutex
	exchanges           []exchange
}

// issueTokens creates an admin, an operator and a reader token on svc and
// gives them to the harness, for the tests over the real service.
func (h *harness) issueTokens(t testing.TB, svc *c2.Service) {
	t.Helper()
	sys := c2.Origin{Actor: "system"}
	for name, role := range map[string]domain.TokenRole{"root": domain.TokenAdmin, "ops": domain.TokenOperator, "viewer": domain.TokenReader} {
		secret, _, err := svc.CreateToken(context.Background(), sys, name, role)
		if err != nil {
			t.Fatal(err)
		}
		switch role {
		case domain.TokenAdmin:
			h.admin = secret
		case domain.TokenOperator:
			h.oper = secret
		default:
			h.reader = secret
		}
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	f := newFake()
	return newHarnessWith(t, cfg, f)
}

func newHarnessWith(t testing.TB, cfg Config, b Backend) *harness {
	t.Helper()
	logs := &syncBuffer{}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = -1 // most tests must not trip the limiter
	}
	if cfg.AuthFailLimit == 0 {
		cfg.AuthFailLimit = -1 // nor the failed-authentication throttle
	}
	s, err := New(cfg, b, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	h := &harness{t: t, s: s, logs: logs}
	t.Cleanup(h.checkAnswers)
	if f, ok := b.(*fakeBackend); ok {
		h.f = f
		h.admin = f.addToken("root", RoleAdmin)
		h.oper = f.addToken("ops", RoleOperator)
		h.reader = f.addToken("viewer", RoleReader)
	}
	return h
}

// do sends a request. body is sent raw if it is a string or []byte,
// JSON-encoded otherwise (nil: no body).
func (h *harness) do(method, path, token string, body any, hdr ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatalf("marshal: %v", err)
		}
		r = bytes.NewReader(j)
	}
	req := httptest.NewRequest(method, path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.s.Handler().ServeHTTP(rec, req)
	h.mu.Lock()
	h.exchanges = append(h.exchanges, exchange{method: method, path: path, status: rec.Code, body: rec.Body.Bytes()})
	h.mu.Unlock()
	return rec
}

// expect checks the status and, for errors, the stable code.
func (h *harness) expect(rec *httptest.ResponseRecorder, status int, code string) {
	h.t.Helper()
	if rec.Code != status {
		h.t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body.String())
	}
	if code == "" {
		return
	}
	var eb apitypes.Error
	if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil {
		h.t.Fatalf("error body not JSON: %v: %s", err, rec.Body.String())
	}
	if eb.Error.Code != code {
		h.t.Fatalf("error code %q, want %q (message %q)", eb.Error.Code, code, eb.Error.Message)
	}
	if eb.Error.RequestID == "" || eb.Error.RequestID != rec.Header().Get(HeaderRequestID) {
		h.t.Fatalf("error request_id %q, header %q", eb.Error.RequestID, rec.Header().Get(HeaderRequestID))
	}
}

func decode[T any](t testing.TB, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decoding %s: %v", rec.Body.String(), err)
	}
	return v
}

const (
	get  = nethttp.MethodGet
	post = nethttp.MethodPost
	put  = nethttp.MethodPut
	del  = nethttp.MethodDelete
)

// key32 is a fixed test key in hex.
const key32 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
