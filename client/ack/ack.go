package ack

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// TopicPrefix starts every ack topic. It is outside "e4/": devices may not
// publish there.
const TopicPrefix = "e4c2ack/"

// Bodies.
const (
	label        = "e4c2-ack-v1:"
	HelloBody    = label + "hello"
	OfflineBody  = label + "offline"
	appliedLabel = label + "applied:"
)

// Kind is what an ack says.
type Kind uint8

// Kinds of acknowledgement.
const (
	Invalid Kind = iota
	Hello
	Applied
	Offline
)

// Topic returns the ack topic of a device id.
func Topic(id []byte) string { return TopicPrefix + hex.EncodeToString(id) }

// ParseTopic returns the device id of an ack topic.
func ParseTopic(topic string) (id [16]byte, ok bool) {
	h, found := strings.CutPrefix(topic, TopicPrefix)
	if !found || len(h) != 32 || strings.ToLower(h) != h {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		return id, false
	}
	return id, true
}

// Digest identifies a protected command: the first 16 bytes of its SHA-256.
func Digest(protectedCommand []byte) [16]byte {
	d := sha256.Sum256(protectedCommand)
	return [16]byte(d[:16])
}

// AppliedBody is the body of the ack of a command.
func AppliedBody(protectedCommand []byte) string {
	d := Digest(protectedCommand)
	return appliedLabel + hex.EncodeToString(d[:])
}

// Parse reads an opened body.
func Parse(body []byte) (Kind, [16]byte) {
	var d [16]byte
	switch s := string(body); {
	case s == HelloBody:
		return Hello, d
	case s == OfflineBody:
		return Offline, d
	case strings.HasPrefix(s, appliedLabel):
		h := s[len(appliedLabel):]
		if len(h) != 32 || strings.ToLower(h) != h {
			return Invalid, d
		}
		if _, err := hex.Decode(d[:], []byte(h)); err != nil {
			return Invalid, d
		}
		return Applied, d
	}
	return Invalid, d
}
