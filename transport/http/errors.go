package http

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	nethttp "net/http"

	"github.com/labstack/echo/v4"

	"github.com/e4c2/e4c2/automation"
	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/transport/http/apitypes"
)

// apiError is an error raised by this package itself (bad query parameter,
// bad JSON, auth failures) that already knows its status and code.
type apiError struct {
	status int
	code   string
	msg    string
	err    error
}

func (e *apiError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *apiError) Unwrap() error { return e.err }

// badRequest builds a 400 with a stable code.
func badRequest(code, format string, args ...any) error {
	return &apiError{status: nethttp.StatusBadRequest, code: code, msg: fmt.Sprintf(format, args...)}
}

// errorRule maps one sentinel to a status and a stable code.
type errorRule struct {
	target error
	status int
	code   string
}

// errorTable is THE mapping from domain and core errors to HTTP. It is
// walked in order with errors.Is, so a more specific sentinel must come
// before a more general one. Error text is never inspected.
var errorTable = []errorRule{
	{domain.ErrUnknownClient, nethttp.StatusNotFound, "unknown_client"},
	{domain.ErrUnknownTopic, nethttp.StatusNotFound, "unknown_topic"},
	{domain.ErrUnknownToken, nethttp.StatusNotFound, "unknown_token"},
	{domain.ErrNotLinked, nethttp.StatusNotFound, "not_linked"},
	{domain.ErrUnknownDelivery, nethttp.StatusNotFound, "unknown_delivery"},
	{core.ErrTopicKeyMissing, nethttp.StatusNotFound, "unknown_topic"},
	{core.ErrPubKeyNotFound, nethttp.StatusNotFound, "unknown_pubkey"},
	{domain.ErrClientExists, nethttp.StatusConflict, "client_exists"}, // before ErrAlreadyExists, which it wraps
	{domain.ErrTopicExists, nethttp.StatusConflict, "topic_exists"},
	{domain.ErrAlreadyExists, nethttp.StatusConflict, "already_exists"},
	{domain.ErrTokenNameRevoked, nethttp.StatusConflict, "token_name_revoked"},
	{domain.ErrLastAdminToken, nethttp.StatusConflict, "last_admin_token"},
	{domain.ErrNoC2Key, nethttp.StatusConflict, "no_c2_key"},
	{eventstore.ErrConflict, nethttp.StatusConflict, "conflict"},
	{core.ErrInvalidName, nethttp.StatusBadRequest, "invalid_name"},
	{core.ErrInvalidTopic, nethttp.StatusBadRequest, "invalid_topic"},
	{core.ErrInvalidKey, nethttp.StatusBadRequest, "invalid_key"},
	{core.ErrInvalidPassword, nethttp.StatusBadRequest, "invalid_password"},
	{domain.ErrInvalidRole, nethttp.StatusBadRequest, "invalid_role"},
	{core.ErrUnsupportedOperation, nethttp.StatusBadRequest, "unsupported_in_mode"}, // domain.ErrWrongMode wraps it
	{domain.ErrInvalidCommand, nethttp.StatusBadRequest, "invalid_command"},
	{core.ErrInvalidProtectedLen, nethttp.StatusBadRequest, "invalid_protected"},
	{core.ErrTooShortCiphertext, nethttp.StatusBadRequest, "invalid_protected"},
	{core.ErrInvalidSignature, nethttp.StatusBadRequest, "not_authentic"},
	{core.ErrNotAuthentic, nethttp.StatusBadRequest, "not_authentic"},
	{core.ErrTimestampTooOld, nethttp.StatusBadRequest, "timestamp_too_old"},
	{core.ErrTimestampInFuture, nethttp.StatusBadRequest, "timestamp_in_future"},
	{core.ErrInvalidCommand, nethttp.StatusBadRequest, "invalid_command"},
	{c2.ErrInvalidCursor, nethttp.StatusBadRequest, "invalid_cursor"},
	{automation.ErrUnknownRule, nethttp.StatusNotFound, "unknown_rule"},
	{automation.ErrRuleExists, nethttp.StatusConflict, "rule_exists"},
	{automation.ErrInvalidRule, nethttp.StatusBadRequest, "invalid_rule"},
	{eventstore.ErrNoSpace, nethttp.StatusInsufficientStorage, "insufficient_storage"}, // the store's disk is full: free space, then retry
	{eventstore.ErrClosed, nethttp.StatusServiceUnavailable, "unavailable"},
	{c2.ErrClosed, nethttp.StatusServiceUnavailable, "unavailable"},
	{context.DeadlineExceeded, nethttp.StatusServiceUnavailable, "timeout"},
	{context.Canceled, nethttp.StatusServiceUnavailable, "canceled"},
}

// classify returns status, code and the message shown to the user. 5xx
// answers carry a generic message: details stay in the server log.
func classify(err error) (int, string, string) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status, ae.code, ae.msg
	}
	var mbe *nethttp.MaxBytesError
	if errors.As(err, &mbe) {
		return nethttp.StatusRequestEntityTooLarge, "body_too_large",
			fmt.Sprintf("request body larger than %d bytes", mbe.Limit)
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case nethttp.StatusNotFound:
			return he.Code, "not_found", "no such route"
		case nethttp.StatusMethodNotAllowed:
			return he.Code, "method_not_allowed", "method not allowed on this route"
		case nethttp.StatusRequestEntityTooLarge:
			return he.Code, "body_too_large", "request body too large"
		}
		if he.Code >= 400 && he.Code < 500 {
			return he.Code, "bad_request", nethttp.StatusText(he.Code)
		}
		return nethttp.StatusInternalServerError, "internal", "internal error"
	}
	var ce *automation.CompileError
	if errors.As(err, &ce) {
		return nethttp.StatusBadRequest, "invalid_expression", err.Error()
	}
	var se *core.SuiteError
	var me *core.ModeError
	if errors.As(err, &se) || errors.As(err, &me) {
		return nethttp.StatusBadRequest, "unsupported_in_mode", err.Error()
	}
	for _, r := range errorTable {
		if errors.Is(err, r.target) {
			if r.status >= 500 {
				return r.status, r.code, "service unavailable"
			}
			return r.status, r.code, err.Error()
		}
	}
	return nethttp.StatusInternalServerError, "internal", "internal error"
}

// handleError is echo's HTTPErrorHandler: one JSON shape for every error.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, code, msg := classify(err)
	rid := requestID(c)
	if status >= 500 {
		// The error text goes to the log only; by the package rules it holds
		// no key material.
		s.log.LogAttrs(c.Request().Context(), slog.LevelError, "request failed",
			slog.String("request_id", rid), slog.String("error", err.Error()))
	}
	if status == nethttp.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="e4c2"`)
	}
	body := apitypes.Error{Error: apitypes.ErrorDetail{Code: code, Message: msg, RequestID: rid}}
	if status < 500 {
		body.Error.Details = errorDetails(err)
	}
	if c.Request().Method == nethttp.MethodHead {
		_ = c.NoContent(status)
		return
	}
	if werr := c.JSON(status, body); werr != nil {
		s.log.LogAttrs(c.Request().Context(), slog.LevelWarn, "writing error response",
			slog.String("request_id", rid), slog.String("error", werr.Error()))
	}
}
