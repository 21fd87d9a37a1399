package standard

import "github.com/e4c2/e4c2/suites/internal/siv"

// SIV is the E4 AES-SIV with an expanded key (RFC 5297 with exactly one
// associated-data component; see suites/internal/siv, the one AES-SIV of
// the module, which the pq suite shares). It is immutable and safe for
// concurrent use.
type SIV = siv.SIV

// NewSIV returns the E4 AES-SIV of a 32-byte key k: the RFC 5297 64-byte
// SIV key is k||k. Callers holding a key for long keep the *SIV instead of
// going through the Suite's cache.
func NewSIV(key []byte) (*SIV, error) { return siv.New(key) }

// NewSIVKeys returns RFC 5297 AES-SIV with separate CMAC and CTR keys (each
// 16, 24 or 32 bytes). E4 only uses NewSIV; this form exists so the
// implementation can be checked against the RFC's own test vectors.
func NewSIVKeys(macKey, ctrKey []byte) (*SIV, error) { return siv.NewKeys(macKey, ctrKey) }
