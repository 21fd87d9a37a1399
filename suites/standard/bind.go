package standard

import "github.com/e4c2/e4c2/suites/core"

var _ core.IdentityBinder = (*Suite)(nil)

// BindIdentity implements core.IdentityBinder: it returns a copy of id (one
// of this suite's identities, or any core.Identity whose Bytes it parses)
// bound to clientID. A nil identity or a key of another suite returns
// ErrInvalidKey; a client id that is not 16 bytes returns ErrInvalidName.
// The logic is core.BindIdentity, shared by every suite.
func (s *Suite) BindIdentity(id core.Identity, clientID []byte) (core.ClientIdentity, error) {
	return core.BindIdentity[Identity](s.Name(), id, clientID, s.ParseIdentity)
}
