// Package apiclient is a Go client of the e4c2 HTTP API (transport/http).
//
// It is what the operator CLI (cmd/e4c2) uses, and what other services can
// import to drive a C2: one method per route, typed request and response
// values mirroring the JSON bodies, and API errors returned as *Error with
// the HTTP status and the API's stable code so callers branch on
// errors.As/Code, never on message text.
//
// The client deliberately does not import the server package: an API client
// must not pull in the C2. Its request and response bodies are the types
// of transport/http/apitypes, the very ones the server's handlers write,
// so the two ends cannot drift apart; the server's test checks those types
// against the OpenAPI document it serves.
//
// The bearer token is passed to New and sent only in the Authorization
// header; it never appears in an error or a URL.
package apiclient
