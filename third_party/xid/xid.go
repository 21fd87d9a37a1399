// Package xid replaces github.com/rs/xid for this project (see the replace
// directive in the main go.mod). The embedded MQTT broker (mochi) calls only
// xid.New().String(), to name clients that connect with an empty client id;
// the original package hashes the host name with MD5 in its init, which
// panics the whole binary under GODEBUG=fips140=only. These ids need to be
// unique, not sortable: 12 bytes from crypto/rand, printed in the same
// 20-character base32hex form.
package xid

import (
	"crypto/rand"
	"encoding/base32"
)

// ID is a 12-byte unique identifier.
type ID [12]byte

var encoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// New returns a random ID.
func New() ID {
	var id ID
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (Go 1.24+)
	return id
}

// String returns the 20-character base32hex form.
func (id ID) String() string { return encoding.EncodeToString(id[:]) }
