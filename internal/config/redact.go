package config

import "regexp"

// credentialInURL matches the password part of a URL's user info, in each
// of several comma-separated URLs (a JetStream cluster); tokenInURL a user
// info without a password, which NATS reads as an authentication token.
// Both run to the last '@' before the host, as Go's URL parser (and so
// the store clients) does: a password or token may hold '@' itself.
var (
	credentialInURL = regexp.MustCompile(`(://[^:/,]*):[^/,]*@`)
	tokenInURL      = regexp.MustCompile(`://[^:/,]+@`)
)

// RedactStoreURL is a store location fit for printing: a store URL's password (EventStoreDB
// or NATS user:pass@host) never reaches the terminal, a log or an error.
func RedactStoreURL(where string) string {
	return tokenInURL.ReplaceAllString(credentialInURL.ReplaceAllString(where, "$1:xxxxx@"), "://xxxxx@")
}

// RedactedError hides a store URL's password in the text of an error from
// a client library (which may quote the URL it was given) and keeps the
// chain for errors.Is and errors.As.
type RedactedError struct{ Err error }

func (e RedactedError) Error() string { return RedactStoreURL(e.Err.Error()) }

// Unwrap returns the client library's error.
func (e RedactedError) Unwrap() error { return e.Err }
