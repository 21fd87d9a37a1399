package broker

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/e4c2/e4c2/client/credential"
)

// testAuthority accepts the SK password of a per-test key for every
// registered device id, and allows the listed topics.
type testAuthority struct {
	key []byte

	mu        sync.RWMutex
	devices   map[[16]byte]bool
	subscribe map[string]bool // topics any device may read
	publish   map[string]bool // topics any device may write

	authCalls atomic.Int64
}

func newAuthority() *testAuthority {
	return &testAuthority{key: []byte("test identity key"), devices: map[[16]byte]bool{},
		subscribe: map[string]bool{}, publish: map[string]bool{}}
}

// device registers a device and returns its id.
func (a *testAuthority) device(n int) [16]byte {
	var id [16]byte
	d := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(n)))
	copy(id[:], d[:])
	a.mu.Lock()
	a.devices[id] = true
	a.mu.Unlock()
	return id
}

func (a *testAuthority) password(id [16]byte) string { return credential.SKPassword(a.key, id[:]) }

func (a *testAuthority) Authenticate(username string, password []byte) ([16]byte, bool) {
	a.authCalls.Add(1)
	id, ok := credential.ParseUsername(username)
	if !ok {
		return id, false
	}
	a.mu.RLock()
	reg := a.devices[id]
	a.mu.RUnlock()
	if !reg || !credential.VerifySK(a.key, id[:], password) {
		return id, false
	}
	return id, true
}

func (a *testAuthority) MaySubscribe(id [16]byte, topic string) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.subscribe[topic]
}

func (a *testAuthority) MayPublish(id [16]byte, topic string) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.publish[topic]
}

func user(id [16]byte) string     { return credential.Username(id[:]) }
func clientID(id [16]byte) string { return credential.ClientID(id[:]) }
