package pq_test

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/e4c2/e4c2/suites/pq"
)

// TestKeysDoNotPrint checks that no fmt verb prints the private key bytes
// of an identity or a C2 key: they must never reach a log line or an error.
func TestKeysDoNotPrint(t *testing.T) {
	s := pq.New()
	id, err := s.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := s.GenerateC2Key()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		name string
		v    any
		priv []byte
		want string
	}{
		{"identity", id, id.Bytes(), "pq.Identity(redacted)"},
		{"c2 key", c2, c2.Bytes(), "pq.C2Key(redacted)"},
	} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
			got := fmt.Sprintf(verb, k.v)
			if got != k.want {
				t.Errorf("%s printed with %s = %q, want %q", k.name, verb, got, k.want)
			}
			if strings.Contains(strings.ToLower(got), hex.EncodeToString(k.priv[:8])) {
				t.Errorf("%s printed with %s contains its private key", k.name, verb)
			}
		}
	}
}
