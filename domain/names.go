package domain

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/e4c2/e4c2/suites/core"
)

// The C2's name policy. suites/core checks what the E4 protocol needs (a
// name is UTF-8 of 1..255 bytes; a topic has no MQTT wildcard); the C2 is
// stricter, because its names are shown to operators in terminals, logs,
// tables and the audit: a name that hides characters, reorders them or
// moves the cursor would let one client pass for another. ValidateClientName
// and ValidateTopic are THE checks: Decide applies them to every command
// that creates a name (API, CLI through the API, automation actions and the
// offline tools all end there), and the HTTP layer applies them to path
// parameters so a malformed name is refused before any lookup.
const (
	// MaxClientNameLen is the longest client (and token) name, in bytes.
	MaxClientNameLen = core.MaxNameLen
	// MaxTopicLen is the longest topic the C2 manages, in bytes (256).
	// MQTT allows 65535, but a topic is also a stream name, a table cell
	// and an audit subject; no deployment we know of comes near 256.
	MaxTopicLen = 256
)

// Reserved topic namespaces: "e4/..." carries the devices' commands (the
// control topics) and "e4c2ack/..." their acknowledgements. A topic key
// there would let a topic member read or forge commands or acks.
var reservedTopicPrefixes = []string{"e4/", "e4c2ack/"}

// ValidateClientName checks a client or token name: core's rules (1..255
// bytes of UTF-8) and no character that misleads a reader (see
// checkVisible). Errors wrap core.ErrInvalidName.
func ValidateClientName(name string) error {
	if err := core.ValidateName(name); err != nil {
		return err
	}
	if err := checkVisible(name); err != nil {
		return fmt.Errorf("%w: %v", core.ErrInvalidName, err)
	}
	return nil
}

// ValidateTopic checks a topic: core's rules (UTF-8, no wildcard, no $),
// at most MaxTopicLen bytes, no character that misleads a reader, and not
// in a reserved namespace ("e4", "e4/...", "e4c2ack", "e4c2ack/...").
// Errors wrap core.ErrInvalidTopic.
func ValidateTopic(topic string) error {
	if len(topic) > MaxTopicLen {
		return fmt.Errorf("%w: length %d over the %d-byte cap", core.ErrInvalidTopic, len(topic), MaxTopicLen)
	}
	if err := core.ValidateTopic(topic); err != nil {
		return err
	}
	if err := checkVisible(topic); err != nil {
		return fmt.Errorf("%w: %v", core.ErrInvalidTopic, err)
	}
	if topic == "e4" || topic == "e4c2ack" {
		return fmt.Errorf("%w: %q is reserved for the C2", core.ErrInvalidTopic, topic)
	}
	for _, p := range reservedTopicPrefixes {
		if strings.HasPrefix(topic, p) {
			return fmt.Errorf("%w: the %s namespace is reserved for the C2 and devices", core.ErrInvalidTopic, p+"...")
		}
	}
	return nil
}

// checkVisible refuses invalid UTF-8, control characters (C0, DEL, C1,
// NUL among them), the bidirectional overrides and isolates (U+202A..U+202E,
// U+2066..U+2069, which reorder what follows), the zero-width characters
// (U+200B..U+200D, U+2060, U+FEFF, which hide differences) and U+FFFD:
// encoding/json turns invalid UTF-8 and lone surrogate escapes into it
// silently, so a name holding it most likely lost its real bytes on the way.
func checkVisible(s string) error {
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return fmt.Errorf("not valid UTF-8 at byte %d", i)
			}
			return fmt.Errorf("replacement character U+FFFD at byte %d", i)
		case unicode.IsControl(r):
			return fmt.Errorf("control character %U at byte %d", r, i)
		case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
			return fmt.Errorf("bidirectional control %U at byte %d", r, i)
		case r >= 0x200B && r <= 0x200D, r == 0x2060, r == 0xFEFF:
			return fmt.Errorf("zero-width character %U at byte %d", r, i)
		}
	}
	return nil
}
