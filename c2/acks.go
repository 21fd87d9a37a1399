package c2

import (
	"context"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/e4c2/e4c2/client/credential"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/suites/core"
)

// ErrBadAck: a device acknowledgement that does not authenticate. It never
// says why (no oracle for a forger).
var ErrBadAck = errors.New("c2: device acknowledgement does not authenticate")

// OpenDeviceAck authenticates an acknowledgement published by device id
// (package client/ack) and returns its body. SK: protected with the
// device's current identity key or, mid-rotation, a key it may still hold
// (a device acknowledges SetIdKey with the key it now holds, a stale one
// with the key it had). PK: signed by the registered identity under
// credential.AuthKey. The timestamp window is the protocol's.
func (s *Service) OpenDeviceAck(ctx context.Context, id domain.ID, protected []byte, now time.Time) ([]byte, error) {
	if _, ok := s.ks.Client(id); !ok {
		return nil, ErrBadAck
	}
	cur, ok := s.ks.ClientKey(id)
	if !ok {
		return nil, ErrBadAck
	}
	w := s.window
	if s.mode == core.PubKey {
		spub, err := s.pk.SigningPublicKey(cur.Public)
		if err != nil {
			return nil, ErrBadAck
		}
		body, sender, err := s.pk.UnprotectSigned(credential.AuthKey, protected, now, w, func(sid []byte) ([]byte, error) {
			if subtle.ConstantTimeCompare(sid, id[:]) != 1 {
				return nil, core.ErrPubKeyNotFound
			}
			return spub, nil
		})
		if err != nil || subtle.ConstantTimeCompare(sender, id[:]) != 1 {
			return nil, ErrBadAck
		}
		return body, nil
	}
	// The keys a device's credential may be made of are the keys it may
	// acknowledge with: the current one (a device acknowledges SetIdKey
	// with the key it now holds) and, mid-rotation, the one it held.
	versions, ok := s.ks.CredentialKeys(id)
	if !ok {
		return nil, ErrBadAck
	}
	for _, v := range versions {
		ref, err := s.clientKeyAt(ctx, id, v)
		if err != nil || ref.Sealed == nil {
			continue
		}
		key, err := s.open(ref)
		if err != nil {
			continue
		}
		body, err := s.suite.Unprotect(key, protected, now, w)
		clear(key)
		if err == nil {
			return body, nil
		}
	}
	return nil, ErrBadAck
}
