package core

import (
	"errors"
	"fmt"
	"strings"
)

// The protocol errors. Every error a suite or the device library returns for
// one of these conditions wraps the matching sentinel, so errors.Is works
// across wrapping. Messages never contain key material.
var (
	ErrTopicKeyMissing      = errors.New("e4: topic key not found")
	ErrInvalidProtectedLen  = errors.New("e4: invalid length of protected message")
	ErrTooShortCiphertext   = errors.New("e4: ciphertext too short")
	ErrInvalidSignature     = errors.New("e4: invalid signature")
	ErrNotAuthentic         = errors.New("e4: message authentication failed")
	ErrTimestampInFuture    = errors.New("e4: timestamp received is in the future")
	ErrTimestampTooOld      = errors.New("e4: timestamp too old")
	ErrPubKeyNotFound       = errors.New("e4: signer public key not found")
	ErrInvalidCommand       = errors.New("e4: invalid command")
	ErrUnsupportedOperation = errors.New("e4: operation not supported in this mode")
	ErrInvalidKey           = errors.New("e4: invalid key")
	ErrInvalidName          = errors.New("e4: invalid name")
	ErrInvalidTopic         = errors.New("e4: invalid topic")
	ErrInvalidPassword      = errors.New("e4: invalid password")
)

// SuiteError reports an unknown suite name; it lists the valid ones.
type SuiteError struct {
	Name  string
	Valid []string
}

func (e *SuiteError) Error() string {
	return fmt.Sprintf("unknown suite %q (valid suites: %s)", e.Name, strings.Join(e.Valid, ", "))
}

// ModeError reports an unknown mode or a mode a suite does not support.
type ModeError struct {
	Suite  string // empty when the mode name itself is unknown
	Mode   string
	Reason string
}

func (e *ModeError) Error() string {
	if e.Suite == "" {
		return fmt.Sprintf("unknown mode %q (valid modes: sk, pk)", e.Mode)
	}
	return fmt.Sprintf("suite %s does not support mode %s: %s", e.Suite, e.Mode, e.Reason)
}
