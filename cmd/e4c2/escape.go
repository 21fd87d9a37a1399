package main

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// safeText makes text from the server (names, topics, messages) safe to
// print on a terminal: control characters (escape sequences could move the
// cursor, rewrite earlier lines or retitle the window), bidirectional
// overrides (they reorder what follows) and zero-width characters (they
// hide a difference between two names) are written as Go-style escapes,
// and so are bytes that are not UTF-8. The server refuses such names since
// they were added to its policy, but a store may hold older ones, and
// another server may not check. Newlines are kept when keepNewlines (for
// multi-line error messages), escaped otherwise (table cells).
func safeText(s string, keepNewlines bool) string {
	clean := true
	for _, r := range s {
		if needsEscape(r) && !(keepNewlines && r == '\n') {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case keepNewlines && r == '\n':
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case needsEscape(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case needsEscape(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// needsEscape: control characters, bidi controls, zero-width characters
// and the rune of an invalid byte.
func needsEscape(r rune) bool {
	switch {
	case r == utf8.RuneError, unicode.IsControl(r):
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	case r >= 0x200B && r <= 0x200D, r == 0x2060, r == 0xFEFF:
		return true
	}
	return false
}
