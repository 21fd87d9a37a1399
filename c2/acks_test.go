package c2_test

import (
	"context"
	"errors"
	"testing"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/client/ack"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/suites/core"
)

// An SK device acknowledges with the key it holds: before a SetIdKey
// reaches it, the old one; after, the new one. Both open while the
// rotation is under way; a key the C2 never gave it does not.
func TestOpenDeviceAckAcrossAKeyRotation(t *testing.T) {
	e := newEnv(t, core.SymKey)
	ctx := context.Background()
	o := c2.Origin{Actor: "test"}
	old, _ := e.suite.GenerateKey()
	if _, err := e.svc.NewClient(ctx, o, c2.ByName("acker"), old, domain.RoleBoth); err != nil {
		t.Fatal(err)
	}
	id := domain.ID(e.suite.ID("acker"))
	if _, err := e.svc.NewClientKey(ctx, o, c2.ByName("acker")); err != nil {
		t.Fatal(err)
	}
	current, err := e.svc.ExportClientKey(ctx, o, c2.ByName("acker"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := e.suite.GenerateKey()
	now := e.clock.Now()
	for name, key := range map[string][]byte{"old key": old, "new key": current, "unknown key": other} {
		sealed, err := e.suite.Protect(key, []byte(ack.HelloBody), now)
		if err != nil {
			t.Fatal(err)
		}
		body, err := e.svc.OpenDeviceAck(ctx, id, sealed, now)
		if name == "unknown key" {
			if !errors.Is(err, c2.ErrBadAck) {
				t.Fatalf("%s: %v, want ErrBadAck", name, err)
			}
			continue
		}
		if err != nil || string(body) != ack.HelloBody {
			t.Fatalf("%s: %q, %v", name, body, err)
		}
	}
}
