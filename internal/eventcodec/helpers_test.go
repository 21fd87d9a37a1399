package eventcodec_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
)

// fakeSealer is AES-256-GCM under a fixed key with a random nonce: enough
// to check that secrets are sealed and bound to their AD.
type fakeSealer struct{ aead cipher.AEAD }

func newFakeSealer() *fakeSealer {
	b, _ := aes.NewCipher(make([]byte, 32))
	a, _ := cipher.NewGCM(b)
	return &fakeSealer{aead: a}
}

func (f *fakeSealer) Seal(p, ad []byte) ([]byte, error) {
	n := make([]byte, 12)
	_, _ = rand.Read(n)
	return f.aead.Seal(n, n, p, ad), nil
}

func (f *fakeSealer) Open(s, ad []byte) ([]byte, error) {
	if len(s) < 12 {
		return nil, errors.New("short")
	}
	return f.aead.Open(nil, s[:12], s[12:], ad)
}
