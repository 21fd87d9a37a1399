package pq

import (
	"fmt"
	"time"

	"github.com/e4c2/e4c2/suites/core"
)

// The deterministic variants below live in a _test.go file so that only
// this package's tests (the vector generator in vectors_test.go and the
// external tests of pq_test) can reach them: a production caller reusing
// encapSeed would reuse a command key, and deterministic signing gives up
// the fault and side-channel hardening of hedged ML-DSA on devices.

// ProtectCommandDeterministic is ProtectCommand with the ML-KEM
// encapsulation randomness given (encapSeed, 32 bytes, FIPS 203 m) and
// deterministic ML-DSA signing, so that the same inputs give the same bytes.
func ProtectCommandDeterministic(c2 *C2Key, clientPub, cmd []byte, ts time.Time, encapSeed []byte) ([]byte, error) {
	if len(encapSeed) != EncapsulationSeedSize {
		return nil, fmt.Errorf("%w: encapsulation seed must be %d bytes, got %d", core.ErrInvalidKey, EncapsulationSeedSize, len(encapSeed))
	}
	return protectCommand(c2, clientPub, cmd, ts, encapSeed, false)
}

// ProtectSignedDeterministic is ProtectSigned with deterministic ML-DSA
// signing (FIPS 204 rnd = 32 zero bytes), so that the same inputs give the
// same bytes. Receivers cannot tell the two apart.
func ProtectSignedDeterministic(id *Identity, topicKey, msg []byte, ts time.Time) ([]byte, error) {
	return protectSigned(id, topicKey, msg, ts, false)
}
