package memstore

import (
	"context"
	"fmt"
	"sync"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/internal/notify"
)

// Store is an in-memory event log.
type Store struct {
	mu      sync.RWMutex
	closed  bool
	log     []eventstore.Record // log[i].Position == i+1
	streams map[string][]uint64 // stream -> positions, index = version-1
	heads   map[string]eventstore.StreamHead
	keyring []byte
	head    *notify.Head
}

var (
	_ eventstore.Store          = (*Store)(nil)
	_ eventstore.KeyringStorage = (*Store)(nil)
	_ eventstore.HeadStore      = (*Store)(nil)
)

// New returns an empty store.
func New() *Store {
	return &Store{
		streams: make(map[string][]uint64),
		heads:   make(map[string]eventstore.StreamHead),
		head:    notify.NewHead(0),
	}
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected int64, evs ...eventstore.EventData) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := eventstore.ValidateAppend(stream, expected, evs); err != nil {
		return 0, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, eventstore.ErrClosed
	}
	h := s.heads[stream]
	if err := eventstore.CheckExpected(stream, expected, h.Version); err != nil {
		s.mu.Unlock()
		return 0, err
	}
	for _, ev := range evs {
		r := eventstore.Record{
			EventData: cloneEvent(ev),
			Stream:    stream,
			Version:   h.Version + 1,
			Position:  uint64(len(s.log)) + 1,
			PrevHash:  h.Hash,
		}
		h = eventstore.StreamHead{Version: r.Version, Hash: eventstore.HashRecord(&r)}
		s.log = append(s.log, r)
		s.streams[stream] = append(s.streams[stream], r.Position)
	}
	s.heads[stream] = h
	last := uint64(len(s.log))
	s.mu.Unlock()
	s.head.Publish(last)
	return h.Version, nil
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64) ([]eventstore.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	if from == 0 {
		from = 1
	}
	pos := s.streams[stream]
	if from > uint64(len(pos)) {
		return nil, nil
	}
	out := make([]eventstore.Record, 0, uint64(len(pos))-from+1)
	for _, p := range pos[from-1:] {
		out = append(out, cloneRecord(s.log[p-1]))
	}
	return out, nil
}

// ReadAll implements eventstore.Store.
func (s *Store) ReadAll(ctx context.Context, from uint64, limit int) ([]eventstore.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("memstore: read all: limit %d must be positive", limit)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	if from == 0 {
		from = 1
	}
	if from > uint64(len(s.log)) {
		return nil, nil
	}
	end := min(uint64(len(s.log)), from-1+uint64(limit))
	out := make([]eventstore.Record, 0, end-from+1)
	for _, r := range s.log[from-1 : end] {
		out = append(out, cloneRecord(r))
	}
	return out, nil
}

// Subscribe implements eventstore.Store.
func (s *Store) Subscribe(ctx context.Context, from uint64, fn func(eventstore.Record) error) error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return eventstore.ErrClosed
	}
	return notify.Subscribe(ctx, s.head, s.ReadAll, from, fn)
}

// StreamHeads implements eventstore.HeadStore.
func (s *Store) StreamHeads(ctx context.Context) (map[string]eventstore.StreamHead, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	out := make(map[string]eventstore.StreamHead, len(s.heads))
	for k, v := range s.heads {
		out[k] = v
	}
	return out, nil
}

// LoadKeyring implements eventstore.KeyringStorage.
func (s *Store) LoadKeyring(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	if s.keyring == nil {
		return nil, eventstore.ErrNoKeyring
	}
	return append([]byte(nil), s.keyring...), nil
}

// SaveKeyring implements eventstore.KeyringStorage.
func (s *Store) SaveKeyring(ctx context.Context, keyring []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return eventstore.ErrClosed
	}
	s.keyring = append([]byte{}, keyring...)
	return nil
}

// Close implements eventstore.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return eventstore.ErrClosed
	}
	s.closed = true
	s.head.Close()
	return nil
}

// TamperForTest replaces the data of the record at position pos, leaving
// its hashes alone, so tests can check that Verify finds the change.
func (s *Store) TamperForTest(pos uint64, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pos >= 1 && pos <= uint64(len(s.log)) {
		s.log[pos-1].Data = append([]byte(nil), data...)
	}
}

// cloneEvent copies the caller's data so later changes to its slice cannot
// alter the stored log, and keeps the time in UTC without a monotonic
// reading, as the durable backends return it.
func cloneEvent(ev eventstore.EventData) eventstore.EventData {
	ev.Data = append([]byte(nil), ev.Data...)
	if !ev.Meta.Time.IsZero() {
		ev.Meta.Time = ev.Meta.Time.UTC()
	}
	return ev
}

// cloneRecord copies a stored record so readers cannot alter the log.
func cloneRecord(r eventstore.Record) eventstore.Record {
	r.Data = append([]byte(nil), r.Data...)
	return r
}
