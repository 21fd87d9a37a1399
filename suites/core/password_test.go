package core

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		pw string
		ok bool
	}{
		{strings.Repeat("a", 16), true},
		{strings.Repeat("é", 8), true}, // 16 bytes
		{strings.Repeat("a", 15), false},
		{"", false},
		{strings.Repeat("a", 16) + "\xff", false},
	} {
		err := CheckPassword(tc.pw, 16)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidPassword)) {
			t.Errorf("%q: %v", tc.pw, err)
		}
		if err != nil && tc.pw != "" && strings.Contains(err.Error(), tc.pw) {
			t.Errorf("%q: error quotes the password", tc.pw)
		}
	}
}
