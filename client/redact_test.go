package client

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/e4c2/e4c2/suites/core"
)

// TestStateDoesNotPrintKeys checks that no fmt verb prints the keys of a
// State snapshot or of its TopicKeys.
func TestStateDoesNotPrintKeys(t *testing.T) {
	key := []byte{0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x17, 0x28}
	topic := []byte{0x31, 0x42, 0x53, 0x64, 0x75, 0x86, 0x97, 0xa8}
	prev := []byte{0xb9, 0xca, 0xdb, 0xec, 0xfd, 0x0e, 0x1f, 0x20}
	tk := TopicKeys{Key: topic, Previous: prev, ReplacedAt: time.Unix(1, 0)}
	st := State{Suite: "standard", Mode: core.SymKey, ID: []byte{1, 2}, Key: key,
		Topics: map[string]TopicKeys{"00": tk}}
	secrets := [][]byte{key, topic, prev}
	for _, v := range []any{st, &st, tk, &tk} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
			got := strings.ToLower(fmt.Sprintf(verb, v))
			for _, k := range secrets {
				if strings.Contains(got, hex.EncodeToString(k)) || strings.Contains(got, fmt.Sprint(k)[1:12]) ||
					strings.Contains(got, fmt.Sprintf("%q", k)[1:12]) {
					t.Errorf("%T printed with %s leaks a key: %s", v, verb, got)
				}
			}
		}
	}
	if got := fmt.Sprint(st); !strings.Contains(got, "ID:0102") || !strings.Contains(got, "Topics:1") {
		t.Errorf("State prints %q, want its id and topic count", got)
	}
}

// TestConfigDoesNotPrintSecrets checks that no fmt verb prints the
// identity key or password of a Config.
func TestConfigDoesNotPrintSecrets(t *testing.T) {
	key := []byte{0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x17, 0x28}
	cfg := Config{Name: "dev", Mode: core.SymKey, Key: key, Password: "hunter2-password"}
	for _, v := range []any{cfg, &cfg} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q", "%d"} {
			got := strings.ToLower(fmt.Sprintf(verb, v))
			if strings.Contains(got, hex.EncodeToString(key)) || strings.Contains(got, fmt.Sprint(key)[1:12]) ||
				strings.Contains(got, "hunter2") || strings.Contains(got, hex.EncodeToString([]byte("hunter2"))) {
				t.Errorf("Config printed with %s leaks a secret: %s", verb, got)
			}
		}
	}
	if got := fmt.Sprint(cfg); !strings.Contains(got, `Name:"dev"`) {
		t.Errorf("Config prints %q, want its name", got)
	}
}
