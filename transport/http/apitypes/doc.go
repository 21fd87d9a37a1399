// Package apitypes holds the JSON bodies of the e4c2 HTTP API: what the
// server (transport/http) writes and reads, and what the Go client
// (transport/http/apiclient) sends and decodes. There is one set of types so
// that the two cannot drift apart: the server's handlers and the client
// both use these, and the server's test compares each of them, field by
// field, with the OpenAPI document it serves (a field added here without
// its documentation fails that test).
//
// The type names are the schema names of the OpenAPI document
// (#/components/schemas/<Name>), except for the generic Page, which is
// documented once per item type (ClientPage, TopicPage, ...).
//
// The package imports nothing of the module: an API client must not pull
// in the server, and the server's internal types (backend requests with
// raw key bytes, tokens with their hash, automation's rule state) stay in
// their own packages and are converted to these at the edge.
//
// Key material appears in two bodies only, both admin-only answers:
// CreatedToken (the token secret, once) and ExportedKey. Every other type
// is public data.
package apitypes
