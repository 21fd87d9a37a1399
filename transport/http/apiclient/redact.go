package apiclient

import "fmt"

// Format prints the server URL; the API token is redacted so a Client in a
// log line or an error never leaks it.
func (c Client) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "apiclient.Client{base:%q token:[redacted]}", c.base)
}

// Format prints the request without its key (SK: the client's secret key).
func (r NewClientRequest) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "apiclient.NewClientRequest{Name:%q ID:%q Role:%q PublicKey:%q Key:[redacted]}", r.Name, r.ID, r.Role, r.PublicKey)
}
