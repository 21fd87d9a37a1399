package apitypes

import "fmt"

// Format prints the request without its key (SK: the client's secret key),
// so that a request in a log line or an error never leaks it.
func (r NewClient) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "apitypes.NewClient{Name:%q ID:%q Role:%q PublicKey:%q Key:[redacted]}", r.Name, r.ID, r.Role, r.PublicKey)
}
