package http

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// TestNewClientRequestDoesNotPrintKey checks that no fmt verb prints the
// client key of a request.
func TestNewClientRequestDoesNotPrintKey(t *testing.T) {
	key := []byte{0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x17, 0x28}
	r := NewClientRequest{Name: "dev", Key: key}
	for _, v := range []any{r, &r} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
			got := strings.ToLower(fmt.Sprintf(verb, v))
			if strings.Contains(got, hex.EncodeToString(key)) || strings.Contains(got, fmt.Sprint(key)[1:12]) ||
				strings.Contains(got, fmt.Sprintf("%q", key)[1:12]) {
				t.Errorf("NewClientRequest printed with %s leaks its key: %s", verb, got)
			}
		}
	}
}
