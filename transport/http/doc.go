// Package http is the C2's HTTP API: every E4 operation (docs/PROTOCOL.md
// section 9) plus queries with cursor pagination, batches, the audit trail,
// the event stream over Server-Sent Events, protect/unprotect helpers,
// API tokens and an admin-only key export, served with echo under /api/v1.
//
// The package owns transport concerns only: bearer-token authentication
// (tokens looked up by SHA-256 and compared in constant time), roles
// (admin > operator > reader; readers may only GET), per-token rate limits,
// body limits, request ids that become the events' correlation id, one JSON
// access log line per request, and ONE table (errors.go) that maps domain
// and core errors to HTTP status codes and stable error codes. It never
// matches error text.
//
// Key material never appears in a response, a log line or an error, with
// exactly two deliberate exceptions: the one-time secret of a new token and
// the admin key export (each export is also logged, without the key, at
// warning level). Everything else goes through a Backend, the interface this
// package defines; ServiceBackend adapts the C2 application service
// (*c2.Service) to it, and the SSE stream shows each record as its audit
// entry, never its (sealed) payload.
//
// Wiring, in the composition root:
//
//	api, err := http.New(http.Config{Metrics: m, Ready: ready}, http.NewServiceBackend(svc), logger)
//	srv := &nethttp.Server{Handler: api.Handler(), ReadHeaderTimeout: ..., WriteTimeout: ...}
//	srv.RegisterOnShutdown(api.Close) // ends SSE streams so Shutdown returns
//
// SSE streams extend their own write deadline per write, so a server-wide
// WriteTimeout does not cut them.
//
// The routes, the roles they require and the OpenAPI document served at
// /openapi.json all come from one route table (routes.go). The JSON bodies
// are the types of transport/http/apitypes, shared with the Go client
// (apiclient); since the document cannot be checked against the router it
// is generated with, the tests check it against those types field by field
// and validate every JSON answer the handler tests receive against it.
//
// The web console (package console, under /ui/) is served beside the API on
// the same listener and calls the same Backend; the composition root mounts
// both with console.Mount.
package http
