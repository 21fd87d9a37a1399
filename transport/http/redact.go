package http

import "fmt"

// Format prints the name, id, role and public key; Key (the SK client key)
// is redacted so a request in a log line or an error never leaks it.
func (r NewClientRequest) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "http.NewClientRequest{Name:%q ID:%x Role:%q PublicKey:%x Key:[redacted]}", r.Name, r.ID, r.Role, r.PublicKey)
}
