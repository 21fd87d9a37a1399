// Package apiclient is a Go client of the e4c2 HTTP API (transport/http).
//
// It is what the operator CLI (cmd/e4c2) uses, and what other services can
// import to drive a C2: one method per route, typed request and response
// values mirroring the JSON bodies, and API errors returned as *Error with
// the HTTP status and the API's stable code so callers branch on
// errors.As/Code, never on message text.
//
// The client deliberately does not import the server package: an API client
// must keep working against the wire format alone, and a test of this
// package against the real routes (cmd/e4c2's scripts) catches any drift.
//
// The bearer token is passed to New and sent only in the Authorization
// header; it never appears in an error or a URL.
package apiclient
