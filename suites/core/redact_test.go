package core

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// TestCommandDoesNotPrintKey checks that no fmt verb prints the key a
// decoded command carries.
func TestCommandDoesNotPrintKey(t *testing.T) {
	key := []byte{0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x17, 0x28}
	c := Command{Code: CmdSetIDKey, Key: key}
	for _, v := range []any{c, &c} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
			got := strings.ToLower(fmt.Sprintf(verb, v))
			if strings.Contains(got, hex.EncodeToString(key)) || strings.Contains(got, fmt.Sprint(key)[1:12]) ||
				strings.Contains(got, fmt.Sprintf("%q", key)[1:12]) {
				t.Errorf("Command printed with %s leaks its key: %s", verb, got)
			}
		}
	}
}
