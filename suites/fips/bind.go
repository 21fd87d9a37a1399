package fips

import (
	"fmt"

	"github.com/e4c2/e4c2/suites/core"
)

var _ core.IdentityBinder = (*Suite)(nil)

// BindIdentity implements core.IdentityBinder: it returns a copy of id (one
// of this suite's identities, or any core.Identity whose Bytes it parses)
// bound to clientID. A nil identity returns ErrInvalidKey.
func (s *Suite) BindIdentity(id core.Identity, clientID []byte) (core.ClientIdentity, error) {
	own, ok := id.(*Identity)
	if id == nil || ok && own == nil {
		return nil, fmt.Errorf("fips: bind identity: %w: nil identity", core.ErrInvalidKey)
	}
	if !ok {
		priv := id.Bytes()
		defer clear(priv)
		parsed, err := s.ParseIdentity(priv)
		if err != nil {
			return nil, fmt.Errorf("fips: bind identity: %w", err)
		}
		if own, ok = parsed.(*Identity); !ok {
			return nil, fmt.Errorf("fips: bind identity: %w", core.ErrInvalidKey)
		}
	}
	return own.WithClientID(clientID)
}
