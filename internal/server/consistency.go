package server

import (
	"context"
	"encoding/json"
	nethttp "net/http"
	"strconv"
	"time"

	"github.com/e4c2/e4c2/transport/http/apitypes"
)

// Read-your-writes across instances (docs/high-availability.md). An
// instance answers a write once its own projections applied it; another
// instance behind the same load balancer may still be a few events behind.
// Every answer therefore names the log position its instance had applied
// (PositionHeader), and a request that sends a position back
// (MinPositionHeader) is served only once this instance's projections
// reached it.
const (
	// PositionHeader is set on every API answer: the global log position
	// the answering instance's read models had applied (for a write: at
	// least the write's own position).
	PositionHeader = "X-E4C2-Position"
	// MinPositionHeader on a request makes the instance wait until its
	// read models reached that position before serving it.
	MinPositionHeader = "X-E4C2-Min-Position"
)

// minPositionWait bounds the wait for MinPositionHeader; past it the
// request is answered 503 position_not_reached.
var minPositionWait = 5 * time.Second

// positionHandler implements both headers around the API.
func (s *Server) positionHandler(next nethttp.Handler) nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if v := r.Header.Get(MinPositionHeader); v != "" {
			want, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				positionError(w, nethttp.StatusBadRequest, "invalid_position", MinPositionHeader+" must be a log position (a decimal integer)", s.svc.Position())
				return
			}
			// Only a request that carries credentials may make the
			// server wait; the API checks them right after.
			if r.Header.Get("Authorization") == "" {
				positionError(w, nethttp.StatusUnauthorized, "missing_token", "missing bearer token", s.svc.Position())
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), minPositionWait)
			err = s.svc.WaitPosition(ctx, want)
			cancel()
			if err != nil {
				positionError(w, nethttp.StatusServiceUnavailable, "position_not_reached",
					"this instance has not applied the log up to "+v+" yet; retry", s.svc.Position())
				return
			}
		}
		if r.Method == nethttp.MethodGet || r.Method == nethttp.MethodHead {
			// A read reflects at least what was applied when it started
			// (and the SSE stream needs its writer untouched).
			w.Header().Set(PositionHeader, strconv.FormatUint(s.svc.Position(), 10))
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&positionWriter{ResponseWriter: w, s: s}, r)
	})
}

// positionWriter sets PositionHeader when a write's answer starts: the
// service has waited for its read models by then.
type positionWriter struct {
	nethttp.ResponseWriter
	s       *Server
	written bool
}

func (p *positionWriter) WriteHeader(code int) {
	if !p.written {
		p.written = true
		p.Header().Set(PositionHeader, strconv.FormatUint(p.s.svc.Position(), 10))
	}
	p.ResponseWriter.WriteHeader(code)
}

func (p *positionWriter) Write(b []byte) (int, error) {
	if !p.written {
		p.WriteHeader(nethttp.StatusOK)
	}
	return p.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (p *positionWriter) Unwrap() nethttp.ResponseWriter { return p.ResponseWriter }

func positionError(w nethttp.ResponseWriter, status int, code, msg string, at uint64) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(PositionHeader, strconv.FormatUint(at, 10))
	if status == nethttp.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(apitypes.Error{Error: apitypes.ErrorDetail{Code: code, Message: msg}})
}
