package c2test

import (
	"bytes"
	"context"
	"testing"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/eventstore/memstore"
	"github.com/e4c2/e4c2/eventstore/sealing"
	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/standard"
)

// Service returns a service in mode over a fresh in-memory store, with the
// standard suite and a fixed master key, and the store (for the tests that
// read the log or run an automation engine beside the service). edit, if
// given, changes the configuration before the service starts. The service
// is closed at the end of the test.
func Service(t testing.TB, mode core.Mode, edit ...func(*c2.Config)) (*c2.Service, *memstore.Store) {
	t.Helper()
	store := memstore.New()
	master, err := sealing.MasterKeyFromBytes(bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		t.Fatal(err)
	}
	kr, err := sealing.OpenKeyring(context.Background(), store, master)
	if err != nil {
		t.Fatal(err)
	}
	cfg := c2.Config{Store: store, Sealer: kr, Suite: standard.New(), Mode: mode}
	for _, e := range edit {
		e(&cfg)
	}
	svc, err := c2.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	return svc, store
}
