package domain

import "fmt"

// The commands that carry clear key material print it under %v, %+v, %#v
// or %x like any byte slice. Their Format methods print the non-secret
// fields only, so a command in a log line or an error never leaks a key.

// Format prints the client, name and role; the keys are redacted.
func (c RegisterClient) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "domain.RegisterClient{Client:%s Name:%q Role:%s Key:[redacted]}", c.Client, c.Name, c.Role)
}

// Format prints the topic; the key is redacted.
func (c PutTopic) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "domain.PutTopic{Topic:%q Key:[redacted]}", c.Topic)
}

// Format prints the client; the key is redacted.
func (c RotateClientKey) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "domain.RotateClientKey{Client:%s Key:[redacted]}", c.Client)
}

// Format prints a placeholder; the private key is redacted.
func (c RotateC2Key) Format(f fmt.State, _ rune) {
	_, _ = f.Write([]byte("domain.RotateC2Key{Private:[redacted]}"))
}
