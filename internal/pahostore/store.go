package pahostore

import (
	"bytes"
	"sort"
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Store is a paho.Store that holds encoded packets. The zero value is not
// ready: use New.
type Store struct {
	mu   sync.Mutex
	open bool
	msgs map[string][]byte
}

var _ paho.Store = (*Store)(nil)

// New returns an empty store; paho opens it when the client connects.
func New() *Store { return &Store{msgs: make(map[string][]byte)} }

// Open makes the store usable. paho opens it on every connection; messages
// kept from an earlier connection stay (they are what resume re-sends).
func (s *Store) Open() {
	s.mu.Lock()
	s.open = true
	s.mu.Unlock()
}

// Put keeps an encoded copy of m under key. A packet that cannot be encoded
// is not kept (paho's store interface has no error to return); paho then
// treats it as never sent, which QoS 1 and 2 recover from on the next
// attempt by the caller.
func (s *Store) Put(key string, m packets.ControlPacket) {
	var buf bytes.Buffer
	if err := m.Write(&buf); err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open {
		s.msgs[key] = buf.Bytes()
	}
}

// Get decodes a fresh packet for key, or returns nil when there is none.
// Like paho's MemoryStore, a closed store answers nothing and changes
// nothing (Get, All, Del, Reset) until it is opened again.
func (s *Store) Get(key string) packets.ControlPacket {
	s.mu.Lock()
	b, ok := s.msgs[key]
	ok = ok && s.open
	s.mu.Unlock()
	if !ok {
		return nil
	}
	p, err := packets.ReadPacket(bytes.NewReader(b))
	if err != nil {
		// Bytes this store encoded itself always decode; a failure here is
		// a paho change, and nil tells paho to drop the key.
		return nil
	}
	return p
}

// All returns the keys held, in a stable order.
func (s *Store) All() []string {
	s.mu.Lock()
	if !s.open {
		s.mu.Unlock()
		return nil
	}
	keys := make([]string, 0, len(s.msgs))
	for k := range s.msgs {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	sort.Strings(keys)
	return keys
}

// Del forgets key.
func (s *Store) Del(key string) {
	s.mu.Lock()
	if s.open {
		delete(s.msgs, key)
	}
	s.mu.Unlock()
}

// Close makes the store refuse new messages; what it holds stays for the
// next Open, as in paho's MemoryStore.
func (s *Store) Close() {
	s.mu.Lock()
	s.open = false
	s.mu.Unlock()
}

// Reset forgets every message (a clean session).
func (s *Store) Reset() {
	s.mu.Lock()
	if s.open {
		s.msgs = make(map[string][]byte)
	}
	s.mu.Unlock()
}
