package c2_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/testwait"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

// Every clear-text key export is an audited event naming who exported which
// key version, and the event never holds the key.
func TestKeyExportIsAudited(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, core.SymKey)
	key := bytes.Repeat([]byte{7}, 32)
	must(e.svc.NewClient(ctx, sys, c2.ByName("dev"), key, domain.RoleBoth))(t)
	must(e.svc.NewTopic(ctx, sys, "plant/x"))(t)

	admin := c2.Origin{Actor: "token:alice"}
	got, err := e.svc.ExportClientKey(ctx, admin, c2.ByName("dev"))
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("export client key: %v", err)
	}
	tk, err := e.svc.ExportTopicKey(ctx, admin, "plant/x")
	if err != nil || len(tk) != 32 {
		t.Fatalf("export topic key: %v", err)
	}
	// The export is durable before the key is returned; the audit read
	// model follows the log asynchronously.
	var entries []projections.AuditEntry
	testwait.For(t, "two export entries of the actor in the audit", func() bool {
		entries, _ = e.svc.Audit(projections.AuditQuery{Actor: "token:alice"})
		return len(entries) >= 2
	})
	if len(entries) != 2 {
		t.Fatalf("audit has %d export entries for the actor, want 2: %+v", len(entries), entries)
	}
	for _, en := range entries {
		if en.Type != domain.TypeKeyExported.WireName() || en.KeyVersion == 0 {
			t.Fatalf("entry %+v", en)
		}
	}
	recs, err := e.store.ReadStream(ctx, domain.ExportStream, 1)
	if err != nil || len(recs) != 2 {
		t.Fatalf("export stream: %d records, %v", len(recs), err)
	}
	for _, r := range recs {
		if bytes.Contains(r.Data, key) || bytes.Contains(r.Data, tk) {
			t.Fatal("an export event holds the key")
		}
	}
	if _, err := e.svc.ExportTopicKey(ctx, admin, "no/such"); err == nil {
		t.Fatal("export of an unknown topic succeeded")
	}
}
