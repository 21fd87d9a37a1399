package http

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"testing"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/transport/http/apitypes"
)

// TestRealServiceSync drives the sync view, the fleet summary and resync
// through the API over the real service: a device never seen, then seen,
// its commands accepted or confirmed, a lost key resent by a resync.
func TestRealServiceSync(t *testing.T) {
	ctx := context.Background()
	e := newRealEnv(t, core.SymKey, Config{})
	o, r := e.oper, e.reader
	e.expect(e.do(post, "/api/v1/clients", o, map[string]string{"name": "dev-a", "key": randKey(t), "role": "consumer"}), 201, "")
	e.expect(e.do(post, "/api/v1/topics", o, map[string]string{"topic": "plant/line-1"}), 201, "")
	e.expect(e.do(put, "/api/v1/clients/dev-a/topics/"+url.PathEscape("plant/line-1"), o, nil), 204, "")

	getSync := func() ClientSync {
		t.Helper()
		rec := e.do(get, "/api/v1/clients/dev-a", r, nil)
		e.expect(rec, 200, "")
		c := decode[Client](t, rec)
		if c.Sync == nil {
			t.Fatalf("no sync object: %s", rec.Body.String())
		}
		return *c.Sync
	}
	s := getSync()
	if s.Status != "never_seen" || s.Seen || s.Pending != 1 || s.OldestPending.IsZero() || s.C2Key != nil ||
		len(s.Topics) != 1 || s.Topics[0].Topic != "plant/line-1" || s.Topics[0].Desired == 0 || s.Topics[0].Accepted != 0 ||
		s.Identity.Desired != 1 || s.Identity.Confirmed != 1 {
		t.Fatalf("registered: %+v", s)
	}
	// The JSON names: snake_case, the words of the API.
	var raw struct{ Sync map[string]any }
	if err := json.Unmarshal(e.do(get, "/api/v1/clients/dev-a", r, nil).Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"status", "seen", "pending", "oldest_pending", "identity", "topics"} {
		if _, ok := raw.Sync[k]; !ok {
			t.Fatalf("sync has no %q: %v", k, raw.Sync)
		}
	}
	fleet := func() FleetSummary {
		t.Helper()
		rec := e.do(get, "/api/v1/fleet", r, nil)
		e.expect(rec, 200, "")
		return decode[FleetSummary](t, rec)
	}
	if f := fleet(); f != (FleetSummary{Clients: 1, NeverSeen: 1, Pending: 1, Waiting: 1}) {
		t.Fatalf("fleet %+v", f)
	}

	// An operator releases the never-seen device's commands (external
	// broker): audited once, counted, and a second release is a no-op.
	e.expect(e.do(post, "/api/v1/clients/dev-a/release", r, nil), 403, "forbidden")
	e.expect(e.do(post, "/api/v1/clients/nobody/release", o, nil), 404, "unknown_client")
	rec := e.do(post, "/api/v1/clients/dev-a/release", o, nil)
	e.expect(rec, 200, "")
	if res := decode[ReleaseResult](t, rec); res != (ReleaseResult{Client: "dev-a", Released: 1, Commands: 1}) {
		t.Fatalf("release %+v", res)
	}
	rec = e.do(post, "/api/v1/release", o, nil)
	e.expect(rec, 200, "")
	if res := decode[ReleaseResult](t, rec); res != (ReleaseResult{}) {
		t.Fatalf("second release %+v", res)
	}
	if s := getSync(); s.Status != "never_seen" || !s.Released || s.Seen {
		t.Fatalf("released: %+v", s)
	}
	if f := fleet(); f != (FleetSummary{Clients: 1, NeverSeen: 1, Pending: 1, Released: 1}) {
		t.Fatalf("fleet after release %+v", f)
	}

	// The device connects; the broker accepts its command.
	a := domain.ClientID("dev-a")
	if err := e.svc.RecordSeen(ctx, c2.Origin{}, a, false); err != nil {
		t.Fatal(err)
	}
	for _, q := range e.svc.PendingFor(a, 0) {
		if err := e.svc.RecordDelivered(ctx, c2.Origin{}, q); err != nil {
			t.Fatal(err)
		}
	}
	if s := getSync(); s.Status != "in_sync" || s.Evidence != "accepted" || !s.Seen || s.FirstSeen.IsZero() || s.Topics[0].Accepted != s.Topics[0].Desired || s.Topics[0].Confirmed != 0 {
		t.Fatalf("accepted: %+v", s)
	}
	if f := fleet(); f != (FleetSummary{Clients: 1, InSync: 1}) {
		t.Fatalf("fleet %+v", f)
	}

	// A rotation lost on its way: lagging, and a resync resends it.
	e.expect(e.do(post, "/api/v1/topics/plant%2Fline-1/rotate", o, nil), 200, "")
	for _, q := range e.svc.PendingFor(a, 0) {
		if err := e.svc.RecordFailed(ctx, c2.Origin{}, q, "lost"); err != nil {
			t.Fatal(err)
		}
	}
	if s := getSync(); s.Status != "lagging" || s.Evidence != "" {
		t.Fatalf("lost: %+v", s)
	}
	e.expect(e.do(post, "/api/v1/clients/dev-a/resync", r, nil), 403, "forbidden")
	e.expect(e.do(post, "/api/v1/clients/dev-a/resync?full=maybe", o, nil), 400, "invalid_query")
	e.expect(e.do(post, "/api/v1/clients/nobody/resync", o, nil), 404, "unknown_client")
	rec = e.do(post, "/api/v1/clients/dev-a/resync", o, nil)
	e.expect(rec, 200, "")
	if res := decode[ResyncResult](t, rec); res.Queued != 1 || res.Client != "dev-a" {
		t.Fatalf("resync %+v", res)
	}
	rec = e.do(post, "/api/v1/resync?full=false", o, nil)
	e.expect(rec, 200, "")
	if res := decode[ResyncResult](t, rec); res.Queued != 0 {
		t.Fatalf("resync of what is pending queued %d", res.Queued)
	}
	for _, q := range e.svc.PendingFor(a, 0) {
		if err := e.svc.RecordConfirmed(ctx, c2.Origin{}, q); err != nil {
			t.Fatal(err)
		}
	}
	if s := getSync(); s.Status != "in_sync" || s.Evidence != "confirmed" || s.Topics[0].Confirmed != s.Topics[0].Desired {
		t.Fatalf("confirmed: %+v", s)
	}
	rec = e.do(post, "/api/v1/resync?full=true", o, nil)
	e.expect(rec, 200, "")
	if res := decode[ResyncResult](t, rec); res.Queued != 2 {
		t.Fatalf("full resync queued %d, want SetIdKey and SetTopicKey", res.Queued)
	}
	// The resync is attributed to the operator's token.
	rec = e.do(get, "/api/v1/audit?type=command.queued.v1&actor=token:ops", r, nil)
	e.expect(rec, 200, "")
	if p := decode[apitypes.Page[AuditEntry]](t, rec); len(p.Items) < 3 {
		t.Fatalf("%d attributed commands", len(p.Items))
	}
	e.snapKeys(t)
	scanForKeys(t, e.exchanges, e.keyList(), e.logs.String())
}

// TestRealServiceSyncPK checks the c2key part of the sync view.
func TestRealServiceSyncPK(t *testing.T) {
	e := newRealEnv(t, core.PubKey, Config{})
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e.expect(e.do(post, "/api/v1/clients", e.oper, map[string]any{"name": "a", "public_key": hex.EncodeToString(pub)}), 201, "")
	rec := e.do(get, "/api/v1/clients/a", e.reader, nil)
	e.expect(rec, 200, "")
	c := decode[Client](t, rec)
	if c.Sync == nil || c.Sync.C2Key == nil || c.Sync.C2Key.Desired == 0 || c.Sync.C2Key.Confirmed != c.Sync.C2Key.Desired {
		t.Fatalf("PK sync %+v", c.Sync)
	}
}
