package core

import (
	"errors"
	"fmt"
)

// CommandCode is the first byte of a C2 command (docs/PROTOCOL.md section 5).
type CommandCode uint8

// The command codes. The values are on the wire and must never change.
const (
	CmdRemoveTopic  CommandCode = 0x00 // args: topichash
	CmdResetTopics  CommandCode = 0x01 // no args
	CmdSetIDKey     CommandCode = 0x02 // args: identity key (SK: symmetric key, PK: private identity)
	CmdSetTopicKey  CommandCode = 0x03 // args: key then topichash
	CmdRemovePubKey CommandCode = 0x04 // args: id (PK only)
	CmdResetPubKeys CommandCode = 0x05 // no args (PK only)
	CmdSetPubKey    CommandCode = 0x06 // args: signing public key then id (PK only)
	CmdSetC2Key     CommandCode = 0x07 // args: C2 public key (PK only)
)

// String returns the protocol name of the command code.
func (c CommandCode) String() string {
	switch c {
	case CmdRemoveTopic:
		return "RemoveTopic"
	case CmdResetTopics:
		return "ResetTopics"
	case CmdSetIDKey:
		return "SetIdKey"
	case CmdSetTopicKey:
		return "SetTopicKey"
	case CmdRemovePubKey:
		return "RemovePubKey"
	case CmdResetPubKeys:
		return "ResetPubKeys"
	case CmdSetPubKey:
		return "SetPubKey"
	case CmdSetC2Key:
		return "SetC2Key"
	}
	return fmt.Sprintf("UnknownCommand(0x%02x)", uint8(c))
}

// Known reports whether c is one of the eight protocol commands.
func (c CommandCode) Known() bool { return c <= CmdSetC2Key }

// PKOnly reports whether the command only exists in PK mode.
func (c CommandCode) PKOnly() bool {
	switch c {
	case CmdRemovePubKey, CmdResetPubKeys, CmdSetPubKey, CmdSetC2Key:
		return true
	}
	return false
}

// Command is a decoded C2 command. Only the fields of its Code are set; the
// byte slices are copies owned by the Command.
type Command struct {
	Code CommandCode
	// TopicHash is set by RemoveTopic and SetTopicKey.
	TopicHash []byte
	// Key is the topic key (SetTopicKey), the identity key (SetIdKey), the
	// signing public key (SetPubKey) or the C2 public key (SetC2Key).
	Key []byte
	// ID is the client id of RemovePubKey and SetPubKey.
	ID []byte
}

// CommandError reports a malformed or refused command. It wraps
// ErrInvalidCommand (unknown code, wrong length) or ErrUnsupportedOperation
// (a PK-only command in SK mode, or a command the suite cannot carry), so
// errors.Is works; it never holds argument bytes.
type CommandError struct {
	Code   CommandCode
	Reason string
	Err    error
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("%v: %s: %s", e.Err, e.Code, e.Reason)
}

// Unwrap returns the sentinel the error wraps.
func (e *CommandError) Unwrap() error { return e.Err }

func cmdErr(code CommandCode, sentinel error, format string, args ...any) error {
	return &CommandError{Code: code, Reason: fmt.Sprintf(format, args...), Err: sentinel}
}

// argLen returns the exact argument length of code under the suite sizes
// and mode, or an error when the command does not exist there.
func argLen(code CommandCode, sizes Sizes, mode Mode) (int, error) {
	if mode != SymKey && mode != PubKey {
		return 0, cmdErr(code, ErrUnsupportedOperation, "invalid mode %d", mode)
	}
	if !code.Known() {
		return 0, cmdErr(code, ErrInvalidCommand, "unknown command code")
	}
	if code.PKOnly() && mode != PubKey {
		return 0, cmdErr(code, ErrUnsupportedOperation, "command only exists in PK mode")
	}
	n, what := 0, ""
	switch code {
	case CmdRemoveTopic, CmdRemovePubKey:
		return IDLen, nil
	case CmdResetTopics, CmdResetPubKeys:
		return 0, nil
	case CmdSetIDKey:
		if mode == SymKey {
			n, what = sizes.Key, "symmetric key"
		} else {
			n, what = sizes.IdentityKey, "identity key"
		}
	case CmdSetTopicKey:
		if sizes.Key == 0 {
			return 0, cmdErr(code, ErrUnsupportedOperation, "suite has no topic key size")
		}
		return sizes.Key + IDLen, nil
	case CmdSetPubKey:
		if sizes.SigningPublic == 0 {
			return 0, cmdErr(code, ErrUnsupportedOperation, "suite has no signing public key size")
		}
		return sizes.SigningPublic + IDLen, nil
	case CmdSetC2Key:
		n, what = sizes.C2PublicKey, "c2 public key"
	}
	if n == 0 {
		return 0, cmdErr(code, ErrUnsupportedOperation, "suite has no %s size", what)
	}
	return n, nil
}

// DecodeCommand parses a command under the suite sizes and mode. Lengths are
// exact: anything else, an unknown code or an empty command is
// ErrInvalidCommand; a PK-only command in SK mode is ErrUnsupportedOperation
// (matching the reference library). Key values are not checked here (the
// receiver validates them with its suite).
func DecodeCommand(b []byte, sizes Sizes, mode Mode) (Command, error) {
	if len(b) == 0 {
		return Command{}, &CommandError{Code: 0xff, Reason: "empty command", Err: ErrInvalidCommand}
	}
	code := CommandCode(b[0])
	want, err := argLen(code, sizes, mode)
	if err != nil {
		return Command{}, err
	}
	args := b[1:]
	if len(args) != want {
		return Command{}, cmdErr(code, ErrInvalidCommand, "arguments are %d bytes, want %d", len(args), want)
	}
	c := Command{Code: code}
	switch code {
	case CmdRemoveTopic:
		c.TopicHash = cmdClone(args)
	case CmdSetIDKey, CmdSetC2Key:
		c.Key = cmdClone(args)
	case CmdSetTopicKey:
		c.Key = cmdClone(args[:want-IDLen])
		c.TopicHash = cmdClone(args[want-IDLen:])
	case CmdRemovePubKey:
		c.ID = cmdClone(args)
	case CmdSetPubKey:
		c.Key = cmdClone(args[:want-IDLen])
		c.ID = cmdClone(args[want-IDLen:])
	}
	return c, nil
}

// Encode checks c against the suite sizes and mode exactly as DecodeCommand
// does, and returns its wire form.
func (c Command) Encode(sizes Sizes, mode Mode) ([]byte, error) {
	want, err := argLen(c.Code, sizes, mode)
	if err != nil {
		return nil, err
	}
	var parts [][]byte
	switch c.Code {
	case CmdRemoveTopic:
		parts = [][]byte{c.TopicHash}
	case CmdSetIDKey, CmdSetC2Key:
		parts = [][]byte{c.Key}
	case CmdSetTopicKey:
		if len(c.TopicHash) != IDLen {
			return nil, cmdErr(c.Code, ErrInvalidCommand, "topic hash is %d bytes, want %d", len(c.TopicHash), IDLen)
		}
		parts = [][]byte{c.Key, c.TopicHash}
	case CmdRemovePubKey:
		parts = [][]byte{c.ID}
	case CmdSetPubKey:
		if len(c.ID) != IDLen {
			return nil, cmdErr(c.Code, ErrInvalidCommand, "id is %d bytes, want %d", len(c.ID), IDLen)
		}
		parts = [][]byte{c.Key, c.ID}
	}
	out := make([]byte, 1, 1+want)
	out[0] = byte(c.Code)
	for _, p := range parts {
		out = append(out, p...)
	}
	if len(out)-1 != want {
		return nil, cmdErr(c.Code, ErrInvalidCommand, "arguments are %d bytes, want %d", len(out)-1, want)
	}
	return out, nil
}

// The typed constructors below build a command without knowing the suite:
// they check what the protocol fixes for every suite (16-byte ids and topic
// hashes, non-empty keys) and leave the suite-dependent key lengths to
// Command.Encode / DecodeCommand on the receiving side.

// EncodeRemoveTopic returns RemoveTopic(topicHash).
func EncodeRemoveTopic(topicHash []byte) ([]byte, error) {
	if len(topicHash) != IDLen {
		return nil, cmdErr(CmdRemoveTopic, ErrInvalidCommand, "topic hash is %d bytes, want %d", len(topicHash), IDLen)
	}
	return cmdConcat(CmdRemoveTopic, topicHash), nil
}

// EncodeResetTopics returns ResetTopics.
func EncodeResetTopics() []byte { return []byte{byte(CmdResetTopics)} }

// EncodeSetIDKey returns SetIdKey(key): the new SK symmetric key or PK
// private identity as the suite's ParseIdentity reads it.
func EncodeSetIDKey(key []byte) ([]byte, error) {
	if len(key) == 0 {
		return nil, cmdErr(CmdSetIDKey, ErrInvalidCommand, "empty key")
	}
	return cmdConcat(CmdSetIDKey, key), nil
}

// EncodeSetTopicKey returns SetTopicKey(key, topicHash), key first.
func EncodeSetTopicKey(key, topicHash []byte) ([]byte, error) {
	if len(key) == 0 {
		return nil, cmdErr(CmdSetTopicKey, ErrInvalidCommand, "empty key")
	}
	if len(topicHash) != IDLen {
		return nil, cmdErr(CmdSetTopicKey, ErrInvalidCommand, "topic hash is %d bytes, want %d", len(topicHash), IDLen)
	}
	return cmdConcat(CmdSetTopicKey, key, topicHash), nil
}

// EncodeRemovePubKey returns RemovePubKey(id).
func EncodeRemovePubKey(id []byte) ([]byte, error) {
	if len(id) != IDLen {
		return nil, cmdErr(CmdRemovePubKey, ErrInvalidCommand, "id is %d bytes, want %d", len(id), IDLen)
	}
	return cmdConcat(CmdRemovePubKey, id), nil
}

// EncodeResetPubKeys returns ResetPubKeys.
func EncodeResetPubKeys() []byte { return []byte{byte(CmdResetPubKeys)} }

// EncodeSetPubKey returns SetPubKey(pubKey, id): the signing public key
// FIRST, then the id, as the reference library does.
func EncodeSetPubKey(pubKey, id []byte) ([]byte, error) {
	if len(pubKey) == 0 {
		return nil, cmdErr(CmdSetPubKey, ErrInvalidCommand, "empty public key")
	}
	if len(id) != IDLen {
		return nil, cmdErr(CmdSetPubKey, ErrInvalidCommand, "id is %d bytes, want %d", len(id), IDLen)
	}
	return cmdConcat(CmdSetPubKey, pubKey, id), nil
}

// EncodeSetC2Key returns SetC2Key(c2PublicKey).
func EncodeSetC2Key(c2PublicKey []byte) ([]byte, error) {
	if len(c2PublicKey) == 0 {
		return nil, cmdErr(CmdSetC2Key, ErrInvalidCommand, "empty public key")
	}
	return cmdConcat(CmdSetC2Key, c2PublicKey), nil
}

// IsCommandError reports whether err is a command refusal (invalid or
// unsupported command).
func IsCommandError(err error) bool {
	var ce *CommandError
	return errors.As(err, &ce)
}

func cmdConcat(code CommandCode, parts ...[]byte) []byte {
	n := 1
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 1, n)
	out[0] = byte(code)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func cmdClone(b []byte) []byte { return append([]byte(nil), b...) }
