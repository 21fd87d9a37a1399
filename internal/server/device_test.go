package server

import (
	"context"
	"testing"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/suites/core"
)

// RegisterTestDevice registers a device named name with role on svc, with
// a fresh key (SK) or identity (PK), and returns its device-library client,
// not connected, on clock (nil: time.Now). It is exported, from a test
// file, for the external tests of this directory (server_test), which
// register their devices the same way as the resilience tests here.
func RegisterTestDevice(t testing.TB, ctx context.Context, svc *c2.Service, o c2.Origin, name string, role domain.Role, clock func() time.Time) *client.Client {
	t.Helper()
	s := svc.Suite()
	cfg := client.Config{Suite: s, Mode: svc.Mode(), Name: name, Clock: clock}
	var registered []byte
	if svc.Mode() == core.SymKey {
		key, err := s.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Key, registered = key, key
	} else {
		id, err := s.(core.PKSuite).GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Key, registered = id.Bytes(), id.PublicKey()
		info := svc.C2()
		if !info.Exists {
			t.Fatal("the PK C2 has no C2 key")
		}
		cfg.C2PublicKey = info.PublicKey
	}
	if _, err := svc.NewClient(ctx, o, c2.ByName(name), registered, role); err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
