package apiclient

import (
	"fmt"
	"strings"
	"testing"
)

// TestSecretsDoNotPrint checks that no fmt verb prints the API token of a
// Client or the key of a NewClientRequest.
func TestSecretsDoNotPrint(t *testing.T) {
	const secret = "e4c2_s3cretTokenValue"
	c, err := New("http://127.0.0.1:1", secret)
	if err != nil {
		t.Fatal(err)
	}
	req := NewClientRequest{Name: "dev", Key: "a1b2c3d4e5f61728"}
	for _, v := range []any{c, *c, req, &req} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
			got := fmt.Sprintf(verb, v)
			for _, s := range []string{secret, req.Key} {
				if strings.Contains(got, s) || strings.Contains(got, fmt.Sprintf("%x", s)) {
					t.Errorf("%T printed with %s leaks a secret: %s", v, verb, got)
				}
			}
		}
	}
	if got := fmt.Sprint(c); !strings.Contains(got, "127.0.0.1:1") {
		t.Errorf("Client prints %q, want its server", got)
	}
}
