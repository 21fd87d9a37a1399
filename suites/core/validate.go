package core

import (
	"crypto/sha3"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	// IDLen is the length of client ids and topic hashes.
	IDLen = 16
	// KeyLen is the length of symmetric keys and identity seeds.
	KeyLen = 32
	// TimestampLen is the length of the LE64 timestamp prefix.
	TimestampLen = 8
	// MaxNameLen and MaxTopicLen bound names and topics.
	MaxNameLen  = 255
	MaxTopicLen = 65535
	// ControlTopicPrefix prefixes the control topic of every client.
	ControlTopicPrefix = "e4/"
)

// HashID is SHA3-256(b)[:16], the identifier hash shared by every suite.
func HashID(b []byte) []byte {
	h := sha3.Sum256(b)
	return h[:IDLen:IDLen]
}

// ControlTopic returns "e4/" + lowercase hex(id).
func ControlTopic(id []byte) string { return ControlTopicPrefix + hex.EncodeToString(id) }

// ValidateName checks a client name: 1..255 bytes of valid UTF-8.
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLen {
		return fmt.Errorf("%w: length %d not in 1..%d bytes", ErrInvalidName, len(name), MaxNameLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidName)
	}
	return nil
}

// ValidateTopic checks a topic: 1..65535 bytes of valid UTF-8, no MQTT
// wildcard, not a $-system topic.
func ValidateTopic(topic string) error {
	switch {
	case len(topic) == 0 || len(topic) > MaxTopicLen:
		return fmt.Errorf("%w: length %d not in 1..%d bytes", ErrInvalidTopic, len(topic), MaxTopicLen)
	case !utf8.ValidString(topic):
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidTopic)
	case strings.ContainsAny(topic, "+#"):
		return fmt.Errorf("%w: wildcards + and # are not allowed", ErrInvalidTopic)
	case strings.HasPrefix(topic, "$"):
		return fmt.Errorf("%w: topics starting with $ are reserved", ErrInvalidTopic)
	case strings.ContainsRune(topic, 0):
		return fmt.Errorf("%w: NUL character", ErrInvalidTopic)
	}
	return nil
}

// ValidateID checks the length of a client id or topic hash.
func ValidateID(id []byte) error {
	if len(id) != IDLen {
		return fmt.Errorf("%w: id must be %d bytes, got %d", ErrInvalidName, IDLen, len(id))
	}
	return nil
}

// PutTimestamp writes LE64(Unix seconds of ts) into dst[:8].
func PutTimestamp(dst []byte, ts time.Time) {
	binary.LittleEndian.PutUint64(dst, uint64(ts.Unix()))
}

// CheckTimestamp reads the LE64 timestamp at the start of protected and
// checks it against the window at now: valid iff
// now-MaxAge <= ts <= now+MaxSkew, compared at full time.Time precision as
// the reference does (a message stamped in the current second is "in the
// future" until that second has fully passed only if MaxSkew is zero and now
// precedes it, which cannot happen for whole seconds <= now).
func CheckTimestamp(protected []byte, now time.Time, w Window) error {
	if len(protected) < TimestampLen {
		return ErrInvalidProtectedLen
	}
	ts := time.Unix(int64(binary.LittleEndian.Uint64(protected)), 0)
	if ts.After(now.Add(w.MaxSkew)) {
		return ErrTimestampInFuture
	}
	if ts.Before(now.Add(-w.MaxAge)) {
		return ErrTimestampTooOld
	}
	return nil
}
