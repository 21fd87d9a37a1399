package http

import (
	"strings"
	"testing"
)

// Names are checked by the one policy (domain.ValidateTopic and
// ValidateClientName) at the API too, and a body that is not UTF-8 is
// refused whole: encoding/json would otherwise decode its bytes as U+FFFD
// and the name would be stored other than as sent.
func TestAPINamePolicy(t *testing.T) {
	h := newHarness(t, Config{})
	for _, topic := range []string{"e4/0011", "e4", "e4c2ack/00ff", "a\u202eb", "a\u200bb", "a\x1bb", strings.Repeat("t", 257)} {
		h.expect(h.do(post, "/api/v1/topics", h.oper, map[string]string{"topic": topic}), 400, "invalid_topic")
	}
	// Raw invalid UTF-8 inside a JSON string.
	h.expect(h.do(post, "/api/v1/topics", h.oper, "{\"topic\":\"a\xffb\"}"), 400, "invalid_utf8")
	// A lone surrogate escape decodes to U+FFFD: refused as a name.
	h.expect(h.do(post, "/api/v1/topics", h.oper, `{"topic":"a\ud800b"}`), 400, "invalid_topic")
	h.expect(h.do(post, "/api/v1/clients", h.oper, `{"name":"a\u202eb","key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`), 400, "invalid_name")
	// References to existing names (paths) keep core's rules only, so a
	// name from before the policy can still be looked at and removed.
	h.expect(h.do(get, "/api/v1/topics/e4%2F0011", h.reader, nil), 404, "unknown_topic")
	h.expect(h.do(get, "/api/v1/topics/a%00b", h.reader, nil), 400, "invalid_topic")
	// Ordinary names still work.
	h.expect(h.do(post, "/api/v1/topics", h.oper, map[string]string{"topic": "capteur/température"}), 201, "")
}
