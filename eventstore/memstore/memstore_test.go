package memstore_test

import (
	"testing"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/memstore"
	"github.com/e4c2/e4c2/eventstore/storetest"
)

func TestConformance(t *testing.T) {
	storetest.RunBackend(t, storetest.Backend{
		Open: func(t *testing.T) (eventstore.Store, func() eventstore.Store) {
			return memstore.New(), nil
		},
		Tamper: func(t *testing.T, s eventstore.Store, _ func() eventstore.Store, pos uint64) eventstore.Store {
			s.(*memstore.Store).TamperForTest(pos, []byte(`{"tampered":true}`))
			return s
		},
	})
}
