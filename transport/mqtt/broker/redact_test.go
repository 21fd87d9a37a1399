package broker

import (
	"fmt"
	"strings"
	"testing"
)

// TestCredentialsDoNotPrintPassword checks that no fmt verb prints the
// password of Credentials.
func TestCredentialsDoNotPrintPassword(t *testing.T) {
	c := Credentials{Username: "c2", Password: "hunter2-password"}
	for _, v := range []any{c, &c} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
			got := fmt.Sprintf(verb, v)
			if strings.Contains(got, "hunter2") || strings.Contains(got, fmt.Sprintf("%x", "hunter2")) {
				t.Errorf("Credentials printed with %s leak the password: %s", verb, got)
			}
		}
	}
}
