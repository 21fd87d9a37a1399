package main

import "testing"

// Names from the server are printed escaped: no terminal escape sequence,
// bidi override, zero-width character or invalid byte reaches the screen.
func TestSafeText(t *testing.T) {
	for in, want := range map[string]string{
		"sensor-1":          "sensor-1",
		"température":       "température",
		"a\x1b[2Jb":         `a\x1b[2Jb`,
		"a\tb\nc\rd":        `a\tb\nc\rd`,
		"a\x00b\x7f":        `a\x00b\x7f`,
		"a\u0085b":          `a\x85b`,
		"evil\u202egnp.exe": `evil\u202egnp.exe`,
		"a\u200bb\ufeff":    `a\u200bb\ufeff`,
		"a\u2066b\u2069":    `a\u2066b\u2069`,
		"bad\xffbyte":       `bad\xffbyte`,
	} {
		if got := safeText(in, false); got != want {
			t.Errorf("safeText(%q) = %q, want %q", in, got, want)
		}
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
	if got := safeText("line 1\nline\x1b 2", true); got != "line 1\nline\\x1b 2" {
		t.Errorf("keepNewlines: %q", got)
	}
	if got := displayName("a\x1bb", "00ff"); got != `a\x1bb` {
		t.Errorf("displayName: %q", got)
	}
}
