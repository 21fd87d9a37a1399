package c2

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/e4c2/e4c2/client/credential"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

// ErrBadAck: a device acknowledgement that does not authenticate. It never
// says why (no oracle for a forger).
var ErrBadAck = errors.New("c2: device acknowledgement does not authenticate")

// OpenDeviceAck authenticates an acknowledgement published by device id
// (package client/ack) and returns its body. SK: protected with the
// device's current identity key or, after a rotation, the key before it
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
	refs := []projections.KeyRef{cur}
	if prev, err := s.previousClientKey(ctx, id, cur.Version); err == nil && prev.Version != 0 {
		refs = append(refs, prev)
	}
	for _, ref := range refs {
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

// previousClientKey finds the SK key event before version cur in the client
// stream (zero KeyRef if none).
func (s *Service) previousClientKey(ctx context.Context, id domain.ID, cur uint64) (projections.KeyRef, error) {
	stream := domain.ClientStream(id)
	recs, err := s.store.ReadStream(ctx, stream, 1)
	if err != nil {
		return projections.KeyRef{}, fmt.Errorf("c2: read %s: %w", stream, err)
	}
	var prev projections.KeyRef
	for i := range recs {
		r := &recs[i]
		if r.Version >= cur {
			break
		}
		switch domain.TypeOf(r.Type) {
		case domain.TypeClientRegistered, domain.TypeClientKeyRotated:
			ev, err := domain.DecodeRecord(r)
			if err != nil {
				return projections.KeyRef{}, err
			}
			sec, ok := domain.SecretOf(ev)
			if !ok {
				continue
			}
			prev = projections.KeyRef{Stream: stream, Version: r.Version, WireType: r.Type, Sealed: sec.Sealed()}
		}
	}
	return prev, nil
}
