package http

import (
	"testing"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/suites/core"
)

// TestNoSilentRekeyingAPI: POST /clients on an existing client and POST
// /topics on an existing topic are 409 with stable codes; replace=true and
// the rotate route are the explicit ways, and the device is told.
func TestNoSilentRekeyingAPI(t *testing.T) {
	e := newRealEnv(t, core.SymKey, Config{})
	o, r := e.oper, e.reader
	e.expect(e.do(post, "/api/v1/clients", o, map[string]string{"name": "dev-a", "key": randKey(t), "role": "consumer"}), 201, "")
	e.expect(e.do(post, "/api/v1/clients", o, map[string]string{"name": "dev-a", "key": randKey(t)}), 409, "client_exists")
	if c := decode[Client](t, e.do(get, "/api/v1/clients/dev-a", r, nil)); c.KeyVersion != 1 || c.Role != "consumer" {
		t.Fatalf("refused new_client changed the client: %+v", c)
	}
	if n := len(e.svc.PendingFor(domain.ClientID("dev-a"), 0)); n != 0 {
		t.Fatalf("%d commands queued by a refused new_client", n)
	}

	// replace keeps the role and queues SetIdKey under the held key.
	rec := e.do(post, "/api/v1/clients", o, map[string]any{"name": "dev-a", "key": randKey(t), "replace": true})
	e.expect(rec, 201, "")
	if c := decode[Client](t, rec); c.Role != "consumer" || c.KeyVersion != 2 {
		t.Fatalf("replaced client %+v", c)
	}
	q := e.svc.PendingFor(domain.ClientID("dev-a"), 0)
	if len(q) != 1 || q[0].Code != core.CmdSetIDKey || q[0].KeyVersion != 1 {
		t.Fatalf("after replace: %+v", q)
	}
	e.expect(e.do(post, "/api/v1/clients", o, map[string]any{"name": "dev-a", "key": randKey(t), "replace": true, "role": "publisher"}), 400, "invalid_role")

	e.expect(e.do(post, "/api/v1/topics", o, map[string]string{"topic": "t/1"}), 201, "")
	e.expect(e.do(post, "/api/v1/topics", o, map[string]string{"topic": "t/1"}), 409, "topic_exists")
	if tp := decode[Topic](t, e.do(get, "/api/v1/topics/t%2F1", r, nil)); tp.KeyVersion != 1 {
		t.Fatalf("refused new_topic rotated: %+v", tp)
	}
	e.expect(e.do(post, "/api/v1/topics/t%2F1/rotate", r, nil), 403, "forbidden")
	e.expect(e.do(post, "/api/v1/topics/t%2F1/rotate", o, nil), 200, "")
	e.expect(e.do(post, "/api/v1/topics/t%2F2/rotate", o, nil), 404, "unknown_topic")
}
