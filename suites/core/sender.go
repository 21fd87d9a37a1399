package core

import "fmt"

// SenderID returns the 16-byte client id a PK message signed with id
// carries: the id id is bound to (see ClientIdentity). Every PK suite's
// ProtectSigned uses it, so an unbound identity, or a wrapper reporting an
// id that is not 16 bytes, is refused the same way in every suite: with an
// error wrapping ErrInvalidKey.
//
// It asserts only the ClientID method (not ClientIdentity) so that any
// wrapper that knows its id works, whatever else it implements.
func SenderID(id Identity) ([]byte, error) {
	if c, ok := id.(interface{ ClientID() []byte }); ok {
		if cid := c.ClientID(); cid != nil {
			if err := ValidateID(cid); err != nil {
				return nil, fmt.Errorf("%w: bound client id: %w", ErrInvalidKey, err)
			}
			return cid, nil
		}
	}
	return nil, fmt.Errorf("%w: identity is not bound to a client id", ErrInvalidKey)
}
