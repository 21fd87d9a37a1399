package main

import "testing"

// unescapeHTML turns Go's HTML escapes back into characters without
// touching an escaped backslash that happens to precede "u0026".
func TestUnescapeHTML(t *testing.T) {
	for in, want := range map[string]string{
		`{"e":"a \u0026\u0026 b \u003c c \u003E d"}`: `{"e":"a && b < c > d"}`,
		`{"e":"\\u0026"}`:  `{"e":"\\u0026"}`,
		`{"e":"\\\u0026"}`: `{"e":"\\&"}`,
		`{"e":"\n\"x\""}`:  `{"e":"\n\"x\""}`,
		`{"e":"\u00e9"}`:   `{"e":"\u00e9"}`,
	} {
		if got := string(unescapeHTML([]byte(in))); got != want {
			t.Errorf("unescapeHTML(%s) = %s, want %s", in, got, want)
		}
	}
}
