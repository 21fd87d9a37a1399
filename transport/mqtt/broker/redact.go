package broker

import "fmt"

// Format prints the username; the password is redacted so a Config in a
// log line or an error never leaks it.
func (c Credentials) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "broker.Credentials{Username:%q Password:[redacted]}", c.Username)
}
