package standard

import "fmt"

// Identities and C2 keys hold private key bytes in plain slices and arrays,
// which fmt would print under %v, %+v, %#v or %x. These methods make every
// fmt verb print a fixed placeholder instead, so a stray log line or error
// cannot leak the key.

// String returns a placeholder; it never includes key material.
func (id *Identity) String() string { return "standard.Identity(redacted)" }

// GoString returns a placeholder for %#v.
func (id *Identity) GoString() string { return id.String() }

// Format prints the placeholder for every fmt verb.
func (id *Identity) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(id.String())) }

// String returns a placeholder; it never includes key material.
func (k *C2Key) String() string { return "standard.C2Key(redacted)" }

// GoString returns a placeholder for %#v.
func (k *C2Key) GoString() string { return k.String() }

// Format prints the placeholder for every fmt verb.
func (k *C2Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }
