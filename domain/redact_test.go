package domain_test

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/e4c2/e4c2/domain"
)

// TestKeyCommandsDoNotPrintKeys checks that no fmt verb prints the key
// material of the commands that carry it.
func TestKeyCommandsDoNotPrintKeys(t *testing.T) {
	key := []byte{0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x17, 0x28}
	cmds := []any{
		domain.RegisterClient{Name: "dev", Key: key},
		domain.PutTopic{Topic: "t", Key: key},
		domain.RotateClientKey{Key: key},
		domain.RotateC2Key{Public: []byte{1}, Private: key},
	}
	for _, v := range cmds {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
			got := strings.ToLower(fmt.Sprintf(verb, v))
			if strings.Contains(got, hex.EncodeToString(key)) || strings.Contains(got, fmt.Sprint(key)[1:12]) ||
				strings.Contains(got, fmt.Sprintf("%q", key)[1:12]) {
				t.Errorf("%T printed with %s leaks its key: %s", v, verb, got)
			}
		}
	}
	if got := fmt.Sprint(domain.PutTopic{Topic: "t", Key: key}); !strings.Contains(got, `Topic:"t"`) {
		t.Errorf("PutTopic prints %q, want its topic", got)
	}
}
