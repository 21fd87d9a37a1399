package apiclient

import "fmt"

// Format prints the server URL; the API token is redacted so a Client in a
// log line or an error never leaks it.
func (c Client) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "apiclient.Client{base:%q token:[redacted]}", c.base)
}
