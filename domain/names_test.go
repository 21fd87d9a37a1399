package domain_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/suites/core"
)

// The characters that mislead a reader, invalid UTF-8 and the replacement
// character are refused in client, token and topic names; the control
// namespaces and over-long topics are refused as topics. Decide applies
// the checks, so every entry point (API, CLI, automation) gets them.
func TestNamePolicy(t *testing.T) {
	bad := map[string]string{
		"NUL":             "a\x00b",
		"newline":         "a\nb",
		"escape sequence": "a\x1b[2Jb",
		"DEL":             "a\x7fb",
		"C1 control":      "a\u0085b",
		"invalid UTF-8":   "a\xffb",
		"U+FFFD":          "a\ufffdb",
		"RLO":             "a\u202eb",
		"LRE":             "a\u202ab",
		"RLI":             "a\u2067b",
		"PDI":             "a\u2069b",
		"ZWSP":            "a\u200bb",
		"ZWJ":             "a\u200db",
		"word joiner":     "a\u2060b",
		"BOM":             "\ufeffab",
	}
	sk := domain.State{Mode: core.SymKey}
	key := make([]byte, 32)
	for what, s := range bad {
		if err := domain.ValidateClientName(s); !errors.Is(err, core.ErrInvalidName) {
			t.Errorf("client name with %s: %v", what, err)
		}
		if err := domain.ValidateTopic("t/" + s); !errors.Is(err, core.ErrInvalidTopic) {
			t.Errorf("topic with %s: %v", what, err)
		}
		if _, err := domain.Decide(sk, domain.RegisterClient{Client: domain.ClientID(s), Name: s, Key: key}); !errors.Is(err, core.ErrInvalidName) {
			t.Errorf("register with %s: %v", what, err)
		}
		if _, err := domain.Decide(sk, domain.PutTopic{Topic: "t/" + s, Key: key}); !errors.Is(err, core.ErrInvalidTopic) {
			t.Errorf("topic with %s: %v", what, err)
		}
		if _, err := domain.Decide(sk, domain.CreateToken{Name: s, Role: domain.TokenReader, Hash: [32]byte{1}}); !errors.Is(err, core.ErrInvalidName) {
			t.Errorf("token with %s: %v", what, err)
		}
		// The error never carries the raw name.
		if err := domain.ValidateClientName(s); err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("%s: the error echoes the name: %q", what, err)
		}
	}
	for _, topic := range []string{"e4", "e4/", "e4/0123456789abcdef0123456789abcdef", "e4/x/y", "e4c2ack", "e4c2ack/00ff", strings.Repeat("t", domain.MaxTopicLen+1)} {
		if _, err := domain.Decide(sk, domain.PutTopic{Topic: topic, Key: key}); !errors.Is(err, core.ErrInvalidTopic) {
			t.Errorf("topic %.40q: %v", topic, err)
		}
	}
	for _, ok := range []string{"sensor-1", "capteur/température", "e4c2/x", "e4x", "ack/e4", "日本語", strings.Repeat("t", domain.MaxTopicLen)} {
		if err := domain.ValidateTopic(ok); err != nil {
			t.Errorf("topic %.40q refused: %v", ok, err)
		}
	}
	for _, ok := range []string{"sensor-1", "Ünïcødé device", "e4", strings.Repeat("n", domain.MaxClientNameLen)} {
		if err := domain.ValidateClientName(ok); err != nil {
			t.Errorf("name %.40q refused: %v", ok, err)
		}
	}
	if err := domain.ValidateClientName(strings.Repeat("n", domain.MaxClientNameLen+1)); !errors.Is(err, core.ErrInvalidName) {
		t.Errorf("over-long name: %v", err)
	}
}
