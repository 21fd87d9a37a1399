package core

import (
	"fmt"
	"unicode/utf8"
)

// CheckPassword applies the password rules every suite shares before its
// KDF runs: valid UTF-8 (a password must give the same key on every
// machine, whatever its locale) and at least minLen bytes. Errors wrap
// ErrInvalidPassword and never quote the password.
func CheckPassword(password string, minLen int) error {
	if !utf8.ValidString(password) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidPassword)
	}
	if len(password) < minLen {
		return fmt.Errorf("%w: %d bytes, at least %d required", ErrInvalidPassword, len(password), minLen)
	}
	return nil
}
