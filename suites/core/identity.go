package core

// ClientIdentity is an Identity bound to the 16-byte client id it signs PK
// messages as. E4 ids come from client names, not from keys, so the id is
// bound to the key explicitly; ProtectSigned of every suite writes the bound
// id into the message and refuses an unbound identity with ErrInvalidKey.
type ClientIdentity interface {
	Identity
	// ClientID returns a copy of the bound id, or nil if unbound.
	ClientID() []byte
}

// IdentityBinder is implemented by every PKSuite: BindIdentity returns a
// copy of id bound to clientID, keeping the suite's cached key expansions.
type IdentityBinder interface {
	BindIdentity(id Identity, clientID []byte) (ClientIdentity, error)
}
