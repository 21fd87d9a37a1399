package http

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	nethttp "net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/transport/http/apitypes"
)

func TestAuth(t *testing.T) {
	h := newHarness(t, Config{})
	t.Run("no token", func(t *testing.T) {
		rec := h.do(get, "/api/v1/clients", "", nil)
		h.expect(rec, 401, "missing_token")
		if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("WWW-Authenticate = %q", rec.Header().Get("WWW-Authenticate"))
		}
	})
	t.Run("wrong scheme", func(t *testing.T) {
		h.expect(h.do(get, "/api/v1/clients", "", nil, "Authorization", "Basic "+h.admin), 401, "missing_token")
	})
	t.Run("unknown token", func(t *testing.T) {
		h.expect(h.do(get, "/api/v1/clients", "e4t_nope", nil), 401, "invalid_token")
	})
	t.Run("unknown route still needs a token", func(t *testing.T) {
		h.expect(h.do(get, "/api/v1/nothing", "", nil), 401, "missing_token")
		h.expect(h.do(get, "/api/v1/nothing", h.reader, nil), 404, "not_found")
	})
	t.Run("health is public", func(t *testing.T) {
		h.expect(h.do(get, "/healthz", "", nil), 200, "")
		h.expect(h.do(get, "/readyz", "", nil), 200, "")
	})
	t.Run("reader may GET only", func(t *testing.T) {
		h.expect(h.do(get, "/api/v1/clients", h.reader, nil), 200, "")
		h.expect(h.do(post, "/api/v1/topics", h.reader, map[string]string{"topic": "a"}), 403, "forbidden")
		h.expect(h.do(del, "/api/v1/topics/a", h.reader, nil), 403, "forbidden")
	})
	t.Run("operator: key operations, no tokens, no export", func(t *testing.T) {
		h.expect(h.do(post, "/api/v1/topics", h.oper, map[string]string{"topic": "a"}), 201, "")
		h.expect(h.do(get, "/api/v1/tokens", h.oper, nil), 403, "forbidden")
		h.expect(h.do(post, "/api/v1/tokens", h.oper, map[string]string{"name": "x", "role": "admin"}), 403, "forbidden")
		h.expect(h.do(post, "/api/v1/export/topics/a", h.oper, nil), 403, "forbidden")
		h.expect(h.do(post, "/api/v1/export/topics/a", h.reader, nil), 403, "forbidden")
	})
	t.Run("revoked token", func(t *testing.T) {
		rec := h.do(post, "/api/v1/tokens", h.admin, map[string]string{"name": "temp", "role": "reader"})
		h.expect(rec, 201, "")
		secret := decode[apitypes.CreatedToken](t, rec).Secret
		h.expect(h.do(get, "/api/v1/clients", secret, nil), 200, "")
		h.expect(h.do(del, "/api/v1/tokens/temp", h.admin, nil), 204, "")
		h.expect(h.do(get, "/api/v1/clients", secret, nil), 401, "invalid_token")
		h.expect(h.do(del, "/api/v1/tokens/temp", h.admin, nil), 404, "unknown_token")
	})
	t.Run("actor attribution", func(t *testing.T) {
		h.f.mu.Lock()
		h.f.calls = nil
		h.f.mu.Unlock()
		h.expect(h.do(post, "/api/v1/topics", h.oper, map[string]string{"topic": "b"}, HeaderRequestID, "req-42"), 201, "")
		h.f.mu.Lock()
		defer h.f.mu.Unlock()
		if len(h.f.calls) != 1 || h.f.calls[0] != (Caller{Actor: "token:ops", CorrelationID: "req-42"}) {
			t.Fatalf("calls = %+v", h.f.calls)
		}
	})
}

// liarBackend's token lookup returns an admin record whatever the hash:
// the constant-time comparison in the middleware must refuse it.
type liarBackend struct{ *fakeBackend }

func (l *liarBackend) TokenByHash(ctx context.Context, sum [32]byte) (Token, error) {
	return Token{Name: "root", Role: RoleAdmin, Hash: [32]byte{1}}, nil
}

func TestAuthComparesHash(t *testing.T) {
	f := newFake()
	h := newHarnessWith(t, Config{}, &liarBackend{fakeBackend: f})
	h.expect(h.do(get, "/api/v1/clients", "anything", nil), 401, "invalid_token")
}

func TestRequestID(t *testing.T) {
	h := newHarness(t, Config{})
	rec := h.do(get, "/healthz", "", nil, HeaderRequestID, "abc-123")
	if got := rec.Header().Get(HeaderRequestID); got != "abc-123" {
		t.Fatalf("echoed request id %q", got)
	}
	rec = h.do(get, "/healthz", "", nil)
	if got := rec.Header().Get(HeaderRequestID); len(got) != 32 {
		t.Fatalf("generated request id %q", got)
	}
	// A hostile id (log injection) is replaced.
	rec = h.do(get, "/healthz", "", nil, HeaderRequestID, "a\"b c")
	if got := rec.Header().Get(HeaderRequestID); got == "a\"b c" || len(got) != 32 {
		t.Fatalf("unsafe request id kept: %q", got)
	}
}

func TestClientLifecycle(t *testing.T) {
	h := newHarness(t, Config{})
	op := h.oper
	h.expect(h.do(post, "/api/v1/clients", op, map[string]string{"name": "dev1", "key": key32, "role": "consumer"}), 201, "")
	rec := h.do(get, "/api/v1/clients/dev1", h.reader, nil)
	h.expect(rec, 200, "")
	cl := decode[Client](t, rec)
	wantID := hex.EncodeToString(core.HashID([]byte("dev1")))
	if cl.Name != "dev1" || cl.ID != wantID || cl.Role != "consumer" {
		t.Fatalf("client = %+v", cl)
	}
	// By hex id too.
	h.expect(h.do(get, "/api/v1/clients/"+wantID, h.reader, nil), 200, "")
	// Creating from an id only.
	h.expect(h.do(post, "/api/v1/clients", op, map[string]string{"id": strings.Repeat("ab", 16), "key": key32}), 201, "")

	for _, tc := range []struct {
		name string
		body any
		code string
	}{
		{"no name", map[string]string{"key": key32}, "invalid_name"},
		{"long name", map[string]string{"name": strings.Repeat("n", 256), "key": key32}, "invalid_name"},
		{"bad id", map[string]string{"id": "zz", "key": key32}, "invalid_id"},
		{"id mismatch", map[string]string{"name": "dev1", "id": strings.Repeat("00", 16), "key": key32}, "invalid_id"},
		{"no key", map[string]string{"name": "x"}, "invalid_key"},
		{"both keys", map[string]string{"name": "x", "key": key32, "public_key": key32}, "invalid_key"},
		{"key not hex", map[string]string{"name": "x", "key": "xyz"}, "invalid_key"},
		{"short key (backend)", map[string]string{"name": "x", "key": "0011"}, "invalid_key"},
		{"bad role", map[string]string{"name": "x", "key": key32, "role": "king"}, "invalid_role"},
		{"unknown field", map[string]string{"name": "x", "key": key32, "colour": "red"}, "invalid_json"},
		{"not json", "{", "invalid_json"},
		{"empty", "", "invalid_json"},
		{"trailing", `{"name":"x","key":"` + key32 + `"} {}`, "invalid_json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.expect(h.do(post, "/api/v1/clients", op, tc.body), 400, tc.code)
		})
	}

	h.expect(h.do(post, "/api/v1/topics", op, map[string]string{"topic": "sensors/temp"}), 201, "")
	enc := "/api/v1/clients/dev1/topics/" + url.PathEscape("sensors/temp")
	h.expect(h.do(put, enc, op, nil), 204, "")
	rec = h.do(get, "/api/v1/clients/dev1/topics", h.reader, nil)
	h.expect(rec, 200, "")
	tp := decode[apitypes.Page[Topic]](t, rec)
	if len(tp.Items) != 1 || tp.Items[0].Name != "sensors/temp" {
		t.Fatalf("client topics = %+v", tp)
	}
	rec = h.do(get, "/api/v1/topics/"+url.PathEscape("sensors/temp")+"/clients", h.reader, nil)
	h.expect(rec, 200, "")
	if cp := decode[apitypes.Page[Client]](t, rec); len(cp.Items) != 1 || cp.Items[0].Name != "dev1" {
		t.Fatalf("topic clients = %+v", cp)
	}
	h.expect(h.do(put, "/api/v1/clients/nobody/topics/x", op, nil), 404, "unknown_client")
	h.expect(h.do(put, "/api/v1/clients/dev1/topics/nothing", op, nil), 404, "unknown_topic")
	h.expect(h.do(put, "/api/v1/clients/dev1/topics/"+url.PathEscape("a+b"), op, nil), 400, "invalid_topic")
	h.expect(h.do(del, enc, op, nil), 204, "")
	h.expect(h.do(del, enc, op, nil), 404, "not_linked")

	h.expect(h.do(post, "/api/v1/clients/dev1/key", op, nil), 204, "")
	h.expect(h.do(post, "/api/v1/clients/ghost/key", op, nil), 404, "unknown_client")
	h.expect(h.do(post, "/api/v1/clients/dev1/reset", op, nil), 204, "")
	h.expect(h.do(post, "/api/v1/clients/ghost/reset", op, nil), 404, "unknown_client")

	// PK-only operations refused in SK mode.
	h.expect(h.do(post, "/api/v1/clients/dev1/pubkeys/reset", op, nil), 400, "unsupported_in_mode")
	h.expect(h.do(put, "/api/v1/clients/dev1/pubkeys/dev1", op, nil), 400, "unsupported_in_mode")
	h.expect(h.do(post, "/api/v1/c2key", op, nil), 400, "unsupported_in_mode")

	rec = h.do(get, "/api/v1/count/clients", h.reader, nil)
	h.expect(rec, 200, "")
	if n := decode[apitypes.Count](t, rec).Count; n != 2 {
		t.Fatalf("count = %d", n)
	}
	h.expect(h.do(del, "/api/v1/clients/dev1", op, nil), 204, "")
	h.expect(h.do(del, "/api/v1/clients/dev1", op, nil), 404, "unknown_client")
	h.expect(h.do(get, "/api/v1/clients/dev1", h.reader, nil), 404, "unknown_client")
}

func TestPKOperations(t *testing.T) {
	h := newHarness(t, Config{})
	h.f.pk = true
	for _, n := range []string{"a", "b"} {
		h.expect(h.do(post, "/api/v1/clients", h.oper, map[string]string{"name": n, "public_key": key32}), 201, "")
	}
	h.expect(h.do(post, "/api/v1/clients/a/pubkeys/reset", h.oper, nil), 204, "")
	h.expect(h.do(put, "/api/v1/clients/a/pubkeys/b", h.oper, nil), 204, "")
	h.expect(h.do(del, "/api/v1/clients/a/pubkeys/b", h.oper, nil), 204, "")
	h.expect(h.do(put, "/api/v1/clients/a/pubkeys/zed", h.oper, nil), 404, "unknown_client")
	h.expect(h.do(post, "/api/v1/c2key", h.oper, nil), 204, "")
	h.expect(h.do(post, "/api/v1/clients/a/key", h.oper, nil), 400, "unsupported_in_mode")
}

func TestTopics(t *testing.T) {
	h := newHarness(t, Config{})
	rec := h.do(post, "/api/v1/topics", h.oper, map[string]string{"topic": "t/1"})
	h.expect(rec, 201, "")
	if r := decode[apitypes.TopicResult](t, rec); r.Rotated || r.Topic != "t/1" {
		t.Fatalf("create = %+v", r)
	}
	// Creating it again is refused: a creation never rotates silently.
	h.expect(h.do(post, "/api/v1/topics", h.oper, map[string]string{"topic": "t/1"}), 409, "topic_exists")
	rec = h.do(post, "/api/v1/topics/t%2F1/rotate", h.oper, nil)
	h.expect(rec, 200, "")
	if r := decode[apitypes.TopicResult](t, rec); !r.Rotated {
		t.Fatalf("rotate = %+v", r)
	}
	h.expect(h.do(post, "/api/v1/topics/t%2F2/rotate", h.oper, nil), 404, "unknown_topic")
	rec = h.do(get, "/api/v1/topics/t%2F1", h.reader, nil)
	h.expect(rec, 200, "")
	if tp := decode[Topic](t, rec); tp.Name != "t/1" || tp.KeyVersion != 2 {
		t.Fatalf("topic = %+v", tp)
	}
	h.expect(h.do(post, "/api/v1/topics", h.oper, map[string]string{"topic": "$SYS"}), 400, "invalid_topic")
	h.expect(h.do(post, "/api/v1/topics", h.oper, map[string]string{"topic": "a/#"}), 400, "invalid_topic")
	h.expect(h.do(post, "/api/v1/topics", h.oper, map[string]string{}), 400, "invalid_topic")
	h.expect(h.do(get, "/api/v1/topics/none", h.reader, nil), 404, "unknown_topic")

	// Protect / unprotect round trip.
	rec = h.do(post, "/api/v1/topics/t%2F1/protect", h.oper, map[string][]byte{"payload": []byte("hello")})
	h.expect(rec, 200, "")
	prot := decode[apitypes.ProtectResponse](t, rec).Protected
	rec = h.do(post, "/api/v1/topics/t%2F1/unprotect", h.oper, map[string][]byte{"protected": prot})
	h.expect(rec, 200, "")
	if got := decode[apitypes.UnprotectResponse](t, rec).Payload; string(got) != "hello" {
		t.Fatalf("unprotect = %q", got)
	}
	prot[len(prot)-1] ^= 1
	h.expect(h.do(post, "/api/v1/topics/t%2F1/unprotect", h.oper, map[string][]byte{"protected": prot}), 400, "not_authentic")
	h.expect(h.do(post, "/api/v1/topics/t%2F1/unprotect", h.oper, map[string][]byte{"protected": {1}}), 400, "invalid_protected")
	h.expect(h.do(post, "/api/v1/topics/t%2F1/unprotect", h.oper, map[string]any{}), 400, "invalid_protected")
	h.expect(h.do(post, "/api/v1/topics/none/protect", h.oper, map[string][]byte{"payload": []byte("x")}), 404, "unknown_topic")
	h.expect(h.do(post, "/api/v1/topics/t%2F1/protect", h.reader, map[string][]byte{"payload": []byte("x")}), 403, "forbidden")

	rec = h.do(get, "/api/v1/count/topics", h.reader, nil)
	h.expect(rec, 200, "")
	if decode[apitypes.Count](t, rec).Count != 1 {
		t.Fatal("topic count")
	}
	h.expect(h.do(del, "/api/v1/topics/t%2F1", h.oper, nil), 204, "")
	h.expect(h.do(del, "/api/v1/topics/t%2F1", h.oper, nil), 404, "unknown_topic")
}

func TestBatch(t *testing.T) {
	h := newHarness(t, Config{MaxPageSize: 10, DefaultPageSize: 5})
	h.expect(h.do(post, "/api/v1/topics", h.oper, map[string]string{"topic": "fleet"}), 201, "")
	for _, n := range []string{"a", "b", "c"} {
		h.expect(h.do(post, "/api/v1/clients", h.oper, map[string]string{"name": n, "key": key32}), 201, "")
	}
	rec := h.do(post, "/api/v1/batch/attach", h.oper, map[string]any{"topic": "fleet", "clients": []string{"a", "ghost", "b", "c"}})
	h.expect(rec, 200, "")
	res := decode[apitypes.BatchResult](t, rec)
	if res.Succeeded != 3 || res.Failed != 1 || len(res.Results) != 4 {
		t.Fatalf("batch = %+v", res)
	}
	if r := res.Results[1]; r.Client != "ghost" || r.OK || r.Error == nil || r.Error.Code != "unknown_client" {
		t.Fatalf("ghost result = %+v", r)
	}
	rec = h.do(get, "/api/v1/topics/fleet/clients", h.reader, nil)
	if n := len(decode[apitypes.Page[Client]](t, rec).Items); n != 3 {
		t.Fatalf("linked = %d", n)
	}
	rec = h.do(post, "/api/v1/batch/reset", h.oper, map[string]any{"clients": []string{"a", "b"}})
	h.expect(rec, 200, "")
	if res := decode[apitypes.BatchResult](t, rec); res.Succeeded != 2 || res.Failed != 0 {
		t.Fatalf("reset = %+v", res)
	}
	h.expect(h.do(post, "/api/v1/batch/reset", h.oper, map[string]any{"clients": []string{}}), 400, "invalid_batch")
	many := make([]string, 11)
	for i := range many {
		many[i] = fmt.Sprint("c", i)
	}
	h.expect(h.do(post, "/api/v1/batch/reset", h.oper, map[string]any{"clients": many}), 400, "invalid_batch")
	h.expect(h.do(post, "/api/v1/batch/attach", h.oper, map[string]any{"topic": "#", "clients": []string{"a"}}), 400, "invalid_topic")
	h.expect(h.do(post, "/api/v1/batch/attach", h.reader, map[string]any{"topic": "fleet", "clients": []string{"a"}}), 403, "forbidden")
}

func TestPagination(t *testing.T) {
	h := newHarness(t, Config{DefaultPageSize: 100, MaxPageSize: 1000})
	h.f.mu.Lock()
	for i := range 1234 {
		name := fmt.Sprintf("client-%05d", i)
		h.f.clients[name] = &fakeClient{name: name, links: map[string]bool{}}
	}
	h.f.mu.Unlock()

	// Default page size, then a cursor walk over more than two pages.
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		path := "/api/v1/clients?limit=300"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		rec := h.do(get, path, h.reader, nil)
		h.expect(rec, 200, "")
		p := decode[apitypes.Page[Client]](t, rec)
		pages++
		for _, c := range p.Items {
			if seen[c.Name] {
				t.Fatalf("duplicate %s on page %d", c.Name, pages)
			}
			seen[c.Name] = true
		}
		if p.Next == "" {
			break
		}
		if strings.Contains(p.Next, "client-") {
			t.Fatalf("cursor is not opaque: %q", p.Next)
		}
		cursor = p.Next
	}
	if len(seen) != 1234 || pages != 5 {
		t.Fatalf("walked %d clients in %d pages", len(seen), pages)
	}

	rec := h.do(get, "/api/v1/clients", h.reader, nil)
	if n := len(decode[apitypes.Page[Client]](t, rec).Items); n != 100 {
		t.Fatalf("default page = %d", n)
	}
	rec = h.do(get, "/api/v1/clients?limit=5000", h.reader, nil)
	h.expect(rec, 200, "")
	if n := len(decode[apitypes.Page[Client]](t, rec).Items); n != 1000 || h.f.lastPage.Limit != 1000 {
		t.Fatalf("clamped page = %d (backend saw %d)", n, h.f.lastPage.Limit)
	}
	h.expect(h.do(get, "/api/v1/clients?limit=0", h.reader, nil), 400, "invalid_limit")
	h.expect(h.do(get, "/api/v1/clients?limit=abc", h.reader, nil), 400, "invalid_limit")
	h.expect(h.do(get, "/api/v1/clients?cursor=garbage", h.reader, nil), 400, "invalid_cursor")
	h.expect(h.do(get, "/api/v1/clients?cursor=c1.%21%21", h.reader, nil), 400, "invalid_cursor")
	h.expect(h.do(get, "/api/v1/topics?limit=-3", h.reader, nil), 400, "invalid_limit")
}

func TestAudit(t *testing.T) {
	h := newHarness(t, Config{})
	h.expect(h.do(post, "/api/v1/topics", h.oper, map[string]string{"topic": "x"}), 201, "")
	h.expect(h.do(post, "/api/v1/clients", h.admin, map[string]string{"name": "d", "key": key32}), 201, "")
	h.expect(h.do(put, "/api/v1/clients/d/topics/x", h.oper, nil), 204, "")

	rec := h.do(get, "/api/v1/audit?actor=token:ops", h.reader, nil)
	h.expect(rec, 200, "")
	p := decode[apitypes.Page[AuditEntry]](t, rec)
	if len(p.Items) != 2 {
		t.Fatalf("ops entries = %+v", p.Items)
	}
	for _, e := range p.Items {
		if e.Actor != "token:ops" {
			t.Fatalf("entry %+v", e)
		}
	}
	rec = h.do(get, "/api/v1/audit?client=d&limit=1", h.reader, nil)
	p = decode[apitypes.Page[AuditEntry]](t, rec)
	if len(p.Items) != 1 || p.Next == "" {
		t.Fatalf("paged audit = %+v", p)
	}
	rec = h.do(get, "/api/v1/audit?client=d&limit=1&cursor="+url.QueryEscape(p.Next), h.reader, nil)
	if p2 := decode[apitypes.Page[AuditEntry]](t, rec); len(p2.Items) != 1 || p2.Items[0].Position <= p.Items[0].Position {
		t.Fatalf("second page = %+v", p2)
	}
	rec = h.do(get, "/api/v1/audit?topic=x&from=2026-01-01T00:00:00Z&to=2026-12-31T00:00:00Z", h.reader, nil)
	h.expect(rec, 200, "")
	if n := len(decode[apitypes.Page[AuditEntry]](t, rec).Items); n != 2 {
		t.Fatalf("topic entries = %d", n)
	}
	rec = h.do(get, "/api/v1/audit?from=2027-01-01T00:00:00Z", h.reader, nil)
	if n := len(decode[apitypes.Page[AuditEntry]](t, rec).Items); n != 0 {
		t.Fatalf("future entries = %d", n)
	}
	h.expect(h.do(get, "/api/v1/audit?from=yesterday", h.reader, nil), 400, "invalid_time")
	h.expect(h.do(get, "/api/v1/audit?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", h.reader, nil), 400, "invalid_time")
	h.expect(h.do(get, "/api/v1/audit?topic=%23", h.reader, nil), 400, "invalid_topic")
}

func TestDeliveries(t *testing.T) {
	h := newHarness(t, Config{})
	rec := h.do(get, "/api/v1/deliveries", h.reader, nil)
	h.expect(rec, 200, "")
	if n := len(decode[apitypes.Page[Delivery]](t, rec).Items); n != 1 {
		t.Fatalf("deliveries = %d", n)
	}
	h.expect(h.do(get, "/api/v1/deliveries?client=ghost", h.reader, nil), 404, "unknown_client")
}

func TestTokens(t *testing.T) {
	h := newHarness(t, Config{})
	rec := h.do(post, "/api/v1/tokens", h.admin, map[string]string{"name": "ci", "role": "operator"})
	h.expect(rec, 201, "")
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatal("token creation is cacheable")
	}
	ct := decode[apitypes.CreatedToken](t, rec)
	if ct.Secret == "" || ct.Name != "ci" || ct.Role != string(RoleOperator) {
		t.Fatalf("created = %+v", ct)
	}
	h.expect(h.do(post, "/api/v1/topics", ct.Secret, map[string]string{"topic": "z"}), 201, "")
	h.expect(h.do(post, "/api/v1/tokens", h.admin, map[string]string{"name": "ci", "role": "reader"}), 409, "already_exists")
	h.expect(h.do(post, "/api/v1/tokens", h.admin, map[string]string{"name": "bad name", "role": "reader"}), 400, "invalid_name")
	h.expect(h.do(post, "/api/v1/tokens", h.admin, map[string]string{"name": "x", "role": "god"}), 400, "invalid_role")
	rec = h.do(get, "/api/v1/tokens", h.admin, nil)
	h.expect(rec, 200, "")
	if strings.Contains(rec.Body.String(), ct.Secret) || strings.Contains(rec.Body.String(), "hash") {
		t.Fatal("token list leaks secrets")
	}
	if n := len(decode[apitypes.TokenList](t, rec).Items); n != 4 {
		t.Fatalf("tokens = %d", n)
	}
}

func TestExport(t *testing.T) {
	h := newHarness(t, Config{})
	h.expect(h.do(post, "/api/v1/clients", h.oper, map[string]string{"name": "d", "key": key32}), 201, "")
	rec := h.do(post, "/api/v1/export/clients/d", h.admin, nil)
	h.expect(rec, 200, "")
	if k := decode[apitypes.ExportedKey](t, rec); k.Key != key32 || k.Client != "d" {
		t.Fatalf("export = %+v", k)
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatal("export is cacheable")
	}
	h.expect(h.do(post, "/api/v1/export/clients/none", h.admin, nil), 404, "unknown_client")
	h.expect(h.do(post, "/api/v1/export/topics/none", h.admin, nil), 404, "unknown_topic")
}

func TestBodyLimit(t *testing.T) {
	h := newHarness(t, Config{BodyLimit: 64})
	big := `{"name":"` + strings.Repeat("a", 100) + `","key":"` + key32 + `"}`
	h.expect(h.do(post, "/api/v1/clients", h.oper, big), 413, "body_too_large")
	// Without a Content-Length (chunked), the limit bites while reading.
	req, _ := nethttp.NewRequest(post, "/api/v1/clients", strings.NewReader(big))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+h.oper)
	rec := httptest.NewRecorder()
	h.s.Handler().ServeHTTP(rec, req)
	h.expect(rec, 413, "body_too_large")
	h.expect(h.do(post, "/api/v1/topics", h.oper, `{"topic":"ok"}`), 201, "")
}

func TestRateLimit(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	h := newHarness(t, Config{RateLimit: 2, RateBurst: 3, Now: clock})
	for i := range 3 {
		h.expect(h.do(get, "/api/v1/clients", h.reader, nil), 200, "")
		_ = i
	}
	rec := h.do(get, "/api/v1/clients", h.reader, nil)
	h.expect(rec, 429, "rate_limited")
	if rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("Retry-After = %q", rec.Header().Get("Retry-After"))
	}
	// Another token has its own bucket.
	h.expect(h.do(get, "/api/v1/clients", h.oper, nil), 200, "")
	// Health is never limited.
	h.expect(h.do(get, "/healthz", "", nil), 200, "")
	now = now.Add(time.Second) // 2 tokens refilled
	h.expect(h.do(get, "/api/v1/clients", h.reader, nil), 200, "")
	h.expect(h.do(get, "/api/v1/clients", h.reader, nil), 200, "")
	h.expect(h.do(get, "/api/v1/clients", h.reader, nil), 429, "rate_limited")
}

func TestErrorTable(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{&domain.OpError{Op: "x", Subject: "c", Err: domain.ErrUnknownClient}, 404, "unknown_client"},
		{fmt.Errorf("wrapped: %w", domain.ErrUnknownTopic), 404, "unknown_topic"},
		{domain.ErrAlreadyExists, 409, "already_exists"},
		{&eventstore.ConflictError{Stream: "s"}, 409, "conflict"},
		{domain.ErrWrongMode, 400, "unsupported_in_mode"},
		{core.ErrInvalidKey, 400, "invalid_key"},
		{domain.ErrInvalidRole, 400, "invalid_role"},
		{eventstore.ErrClosed, 503, "unavailable"},
		{errors.New("secret detail"), 500, "internal"},
		{domain.ErrInvalidEvent, 500, "internal"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			h := newHarness(t, Config{})
			h.f.failWith = tc.err
			rec := h.do(get, "/api/v1/clients", h.reader, nil)
			h.expect(rec, tc.status, tc.code)
			if tc.status >= 500 && strings.Contains(rec.Body.String(), tc.err.Error()) {
				t.Fatalf("5xx leaks detail: %s", rec.Body.String())
			}
		})
	}
}

func TestMethodNotAllowedAndNotFound(t *testing.T) {
	h := newHarness(t, Config{})
	h.expect(h.do(nethttp.MethodPatch, "/api/v1/clients", h.admin, nil), 405, "method_not_allowed")
	h.expect(h.do(get, "/nowhere", h.admin, nil), 404, "not_found")
}

func TestLogging(t *testing.T) {
	h := newHarness(t, Config{})
	h.expect(h.do(post, "/api/v1/clients", h.oper, map[string]string{"name": "d", "key": key32}, HeaderRequestID, "log-1"), 201, "")
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line not JSON: %q", l)
		}
		if m["request_id"] == "log-1" {
			line = m
		}
	}
	if line == nil {
		t.Fatal("no log line for the request")
	}
	for k, want := range map[string]any{"method": "POST", "path": "/api/v1/clients", "status": float64(201), "actor": "token:ops"} {
		if line[k] != want {
			t.Fatalf("log %s = %v, want %v", k, line[k], want)
		}
	}
	if _, ok := line["latency_ms"].(float64); !ok {
		t.Fatal("no latency")
	}
	logs := h.logs.String()
	if strings.Contains(logs, key32) || strings.Contains(logs, h.oper) {
		t.Fatal("log holds a key or a token")
	}
}

func TestConfigValidation(t *testing.T) {
	f := newFake()
	if _, err := New(Config{DefaultPageSize: 10, MaxPageSize: 5}, f, nil); err == nil {
		t.Fatal("default > max accepted")
	}
	if _, err := New(Config{BodyLimit: -1}, f, nil); err == nil {
		t.Fatal("negative body limit accepted")
	}
	if _, err := New(Config{}, nil, nil); err == nil {
		t.Fatal("nil backend accepted")
	}
}

func TestReadyAndMetrics(t *testing.T) {
	var notReady error
	metrics := nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) { _, _ = w.Write([]byte("ops_total 1\n")) })
	h := newHarness(t, Config{Ready: func(context.Context) error { return notReady }, Metrics: metrics})
	h.expect(h.do(get, "/readyz", "", nil), 200, "")
	notReady = errors.New("broker down")
	rec := h.do(get, "/readyz", "", nil)
	h.expect(rec, 503, "not_ready")
	if strings.Contains(rec.Body.String(), "broker") {
		t.Fatal("readyz leaks the internal reason")
	}
	rec = h.do(get, "/metrics", "", nil)
	h.expect(rec, 200, "")
	if rec.Body.String() != "ops_total 1\n" {
		t.Fatalf("metrics = %q", rec.Body.String())
	}
	// With MetricsAuth, /metrics needs a token.
	h2 := newHarness(t, Config{Metrics: metrics, MetricsAuth: true})
	h2.expect(h2.do(get, "/metrics", "", nil), 401, "missing_token")
	h2.expect(h2.do(get, "/metrics", h2.reader, nil), 200, "")
	// Without a metrics handler, /metrics is simply not there.
	h3 := newHarness(t, Config{})
	h3.expect(h3.do(get, "/metrics", "", nil), 401, "missing_token")
	h3.expect(h3.do(get, "/metrics", h3.reader, nil), 404, "not_found")
}
