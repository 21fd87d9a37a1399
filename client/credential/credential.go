package credential

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"crypto/sha3"

	"github.com/e4c2/e4c2/suites/core"
)

// Label is the domain separation prefix of every credential.
const Label = "e4c2-mqtt-v1:"

// ClientIDPrefix starts the MQTT client id of every device.
const ClientIDPrefix = "e4dev-"

// ErrInvalid: the credential is malformed or does not verify. It never says
// which part failed, so a caller cannot use it as an oracle.
var ErrInvalid = errors.New("credential: invalid device credential")

// Window is how far a PK password's timestamp may lie in the past and in the
// future at the broker.
var Window = core.Window{MaxAge: 10 * time.Minute, MaxSkew: time.Minute}

// AuthKey is the fixed, public topic key of PK passwords: SHA3-256 of the
// label. It is no secret; the signature authenticates the password.
var AuthKey = func() []byte {
	d := sha3.Sum256([]byte(Label))
	return d[:]
}()

// Username returns the MQTT username of a device id: its lower-case hex.
func Username(id []byte) string { return hex.EncodeToString(id) }

// ClientID returns the MQTT client id a device must use.
func ClientID(id []byte) string { return ClientIDPrefix + hex.EncodeToString(id) }

// ParseUsername returns the device id of a username, false if it is not 32
// lower-case hex characters.
func ParseUsername(u string) (id [16]byte, ok bool) {
	if len(u) != 32 {
		return id, false
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return id, false
		}
	}
	if _, err := hex.Decode(id[:], []byte(u)); err != nil {
		return id, false
	}
	return id, true
}

func message(id []byte) []byte { return []byte(Label + Username(id)) }

// SKPassword returns the SK password of a device: hex(HMAC-SHA256(key,
// Label + username)).
func SKPassword(key, id []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(message(id))
	return hex.EncodeToString(m.Sum(nil))
}

// VerifySK reports whether password is the SK password of (key, id), in
// constant time.
func VerifySK(key, id, password []byte) bool {
	want := SKPassword(key, id)
	return subtle.ConstantTimeCompare([]byte(want), password) == 1
}

// PKPassword returns a PK password for identity (bound to id, see
// core.IdentityBinder) at time now.
func PKPassword(s core.PKSuite, identity core.Identity, id []byte, now time.Time) (string, error) {
	bound, err := s.BindIdentity(identity, id)
	if err != nil {
		return "", fmt.Errorf("credential: %w", err)
	}
	p, err := s.ProtectSigned(bound, AuthKey, message(id), now)
	if err != nil {
		return "", fmt.Errorf("credential: %w", err)
	}
	return hex.EncodeToString(p), nil
}

// VerifyPK checks a PK password of device id against its signing public key
// (core.PKSuite.SigningPublicKey of its registered key) at time now.
func VerifyPK(s core.PKSuite, signingPub, id, password []byte, now time.Time) error {
	raw := make([]byte, hex.DecodedLen(len(password)))
	if _, err := hex.Decode(raw, password); err != nil {
		return ErrInvalid
	}
	plain, sender, err := s.UnprotectSigned(AuthKey, raw, now, Window, func(sid []byte) ([]byte, error) {
		if subtle.ConstantTimeCompare(sid, id) != 1 {
			return nil, core.ErrPubKeyNotFound
		}
		return signingPub, nil
	})
	if err != nil {
		return ErrInvalid
	}
	if subtle.ConstantTimeCompare(sender, id) != 1 || subtle.ConstantTimeCompare(plain, message(id)) != 1 {
		return ErrInvalid
	}
	return nil
}
