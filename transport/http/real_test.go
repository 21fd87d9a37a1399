package http

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/c2test"
	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/transport/http/apitypes"
)

// realEnv is the API over the real application service on an in-memory
// store.
type realEnv struct {
	*harness
	svc  *c2.Service
	keys map[string][]byte // every key seen, by hex, for the leak scan
}

func newRealEnv(t *testing.T, mode core.Mode, cfg Config) *realEnv {
	t.Helper()
	svc, _ := c2test.Service(t, mode)
	h := newHarnessWith(t, cfg, NewServiceBackend(svc))
	h.issueTokens(t, svc)
	return &realEnv{harness: h, svc: svc, keys: map[string][]byte{}}
}

// snapKeys records the current key of every client and topic, read from
// the service directly (never through the API under test).
func (e *realEnv) snapKeys(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	cs, _, err := e.svc.Clients("", 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if k, err := e.svc.ExportClientKey(ctx, c2.Origin{Actor: "test"}, c2.ByID(c.ID)); err == nil {
			e.keys[hex.EncodeToString(k)] = k
		}
	}
	ts, _, err := e.svc.Topics("", 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range ts {
		k, err := e.svc.ExportTopicKey(ctx, c2.Origin{Actor: "test"}, tp.Name)
		if err != nil {
			t.Fatal(err)
		}
		e.keys[hex.EncodeToString(k)] = k
	}
}

func (e *realEnv) keyList() [][]byte {
	var out [][]byte
	for _, k := range e.keys {
		out = append(out, k)
	}
	return out
}

func randKey(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestRealServiceSK runs every SK operation through the API on the real
// service, checks statuses and effects, then scans every response for key
// material.
func TestRealServiceSK(t *testing.T) {
	e := newRealEnv(t, core.SymKey, Config{})
	a, o, r := e.admin, e.oper, e.reader
	step := func(method, path, token string, body any, status int, code string) *httptest.ResponseRecorder {
		t.Helper()
		rec := e.do(method, path, token, body)
		e.expect(rec, status, code)
		e.snapKeys(t)
		return rec
	}
	keyA := randKey(t)
	step(post, "/api/v1/clients", o, map[string]string{"name": "dev-a", "key": keyA, "role": "consumer"}, 201, "")
	step(post, "/api/v1/clients", o, map[string]string{"name": "dev-b", "key": randKey(t)}, 201, "")
	idC := hex.EncodeToString(core.HashID([]byte("dev-c")))
	step(post, "/api/v1/clients", o, map[string]string{"id": idC, "key": randKey(t), "role": "publisher"}, 201, "")
	step(post, "/api/v1/clients", o, map[string]string{"name": "short", "key": "0011"}, 400, "invalid_key")
	step(post, "/api/v1/clients", r, map[string]string{"name": "x", "key": keyA}, 403, "forbidden")
	step(get, "/api/v1/c2key", r, nil, 409, "no_c2_key")

	rec := step(get, "/api/v1/clients/dev-a", r, nil, 200, "")
	if c := decode[Client](t, rec); c.Name != "dev-a" || c.Role != "consumer" || c.ID != hex.EncodeToString(core.HashID([]byte("dev-a"))) {
		t.Fatalf("client = %+v", c)
	}
	step(get, "/api/v1/clients/"+idC, r, nil, 200, "")
	step(get, "/api/v1/clients/nobody", r, nil, 404, "unknown_client")

	rec = step(post, "/api/v1/topics", o, map[string]string{"topic": "plant/line-1"}, 201, "")
	if decode[apitypes.TopicResult](t, rec).Rotated {
		t.Fatal("creation reported as rotation")
	}
	step(post, "/api/v1/topics", o, map[string]string{"topic": "plant/line-2"}, 201, "")
	enc1 := url.PathEscape("plant/line-1")
	step(put, "/api/v1/clients/dev-a/topics/"+enc1, o, nil, 204, "")
	step(put, "/api/v1/clients/ghost/topics/"+enc1, o, nil, 404, "unknown_client")
	step(put, "/api/v1/clients/dev-a/topics/nothing", o, nil, 404, "unknown_topic")

	// Batch: all good (one decision), then with an unknown client (per item).
	rec = step(post, "/api/v1/batch/attach", o, map[string]any{"topic": "plant/line-2", "clients": []string{"dev-a", "dev-b"}}, 200, "")
	if res := decode[apitypes.BatchResult](t, rec); res.Succeeded != 2 || res.Failed != 0 {
		t.Fatalf("batch = %+v", res)
	}
	rec = step(post, "/api/v1/batch/attach", o, map[string]any{"topic": "plant/line-1", "clients": []string{"dev-b", "ghost", idC}}, 200, "")
	res := decode[apitypes.BatchResult](t, rec)
	if res.Succeeded != 2 || res.Failed != 1 || res.Results[1].Error == nil || res.Results[1].Error.Code != "unknown_client" {
		t.Fatalf("batch with failure = %+v", res)
	}
	rec = step(get, "/api/v1/topics/"+enc1+"/clients", r, nil, 200, "")
	if n := len(decode[apitypes.Page[Client]](t, rec).Items); n != 3 {
		t.Fatalf("line-1 has %d clients", n)
	}
	rec = step(get, "/api/v1/clients/dev-a/topics", r, nil, 200, "")
	if n := len(decode[apitypes.Page[Topic]](t, rec).Items); n != 2 {
		t.Fatalf("dev-a has %d topics", n)
	}

	// Rotation, protect/unprotect with the rotated key.
	step(post, "/api/v1/topics", o, map[string]string{"topic": "plant/line-1"}, 409, "topic_exists")
	rec = step(post, "/api/v1/topics/"+enc1+"/rotate", o, nil, 200, "")
	if !decode[apitypes.TopicResult](t, rec).Rotated {
		t.Fatal("rotation not reported")
	}
	rec = step(post, "/api/v1/topics/"+enc1+"/protect", o, map[string][]byte{"payload": []byte("valve=open")}, 200, "")
	prot := decode[apitypes.ProtectResponse](t, rec).Protected
	rec = step(post, "/api/v1/topics/"+enc1+"/unprotect", o, map[string][]byte{"protected": prot}, 200, "")
	if p := decode[apitypes.UnprotectResponse](t, rec).Payload; string(p) != "valve=open" {
		t.Fatalf("unprotected %q", p)
	}
	prot[len(prot)-1] ^= 0x80
	step(post, "/api/v1/topics/"+enc1+"/unprotect", o, map[string][]byte{"protected": prot}, 400, "not_authentic")
	step(post, "/api/v1/topics/"+enc1+"/unprotect", o, map[string][]byte{"protected": {1, 2, 3}}, 400, "invalid_protected")

	step(post, "/api/v1/clients/dev-b/key", o, nil, 204, "")
	step(post, "/api/v1/clients/ghost/key", o, nil, 404, "unknown_client")
	step(post, "/api/v1/clients/dev-a/pubkeys/reset", o, nil, 400, "unsupported_in_mode")
	step(post, "/api/v1/c2key", o, nil, 400, "unsupported_in_mode")
	step(del, "/api/v1/clients/dev-b/topics/"+url.PathEscape("plant/line-2"), o, nil, 204, "")
	step(del, "/api/v1/clients/dev-b/topics/"+url.PathEscape("plant/line-2"), o, nil, 404, "not_linked")
	step(post, "/api/v1/batch/reset", o, map[string]any{"clients": []string{idC, "ghost"}}, 200, "")
	step(post, "/api/v1/clients/dev-b/reset", o, nil, 204, "")

	// Queries.
	rec = step(get, "/api/v1/count/clients", r, nil, 200, "")
	if decode[apitypes.Count](t, rec).Count != 3 {
		t.Fatal("client count")
	}
	rec = step(get, "/api/v1/count/topics", r, nil, 200, "")
	if decode[apitypes.Count](t, rec).Count != 2 {
		t.Fatal("topic count")
	}
	rec = step(get, "/api/v1/deliveries?limit=2", r, nil, 200, "")
	dp := decode[apitypes.Page[Delivery]](t, rec)
	if len(dp.Items) != 2 || dp.Next == "" {
		t.Fatalf("deliveries page = %+v", dp)
	}
	rec = step(get, "/api/v1/deliveries?limit=2&cursor="+url.QueryEscape(dp.Next), r, nil, 200, "")
	if dp2 := decode[apitypes.Page[Delivery]](t, rec); len(dp2.Items) == 0 || dp2.Items[0].Seq <= dp.Items[1].Seq {
		t.Fatalf("deliveries page 2 = %+v", dp2)
	}
	rec = step(get, "/api/v1/deliveries?client=dev-a", r, nil, 200, "")
	for _, d := range decode[apitypes.Page[Delivery]](t, rec).Items {
		if d.Client != hex.EncodeToString(core.HashID([]byte("dev-a"))) {
			t.Fatalf("delivery of another client: %+v", d)
		}
	}
	rec = step(get, "/api/v1/audit?actor=token:ops&client=dev-a&limit=3", r, nil, 200, "")
	ap := decode[apitypes.Page[AuditEntry]](t, rec)
	if len(ap.Items) != 3 || ap.Next == "" {
		t.Fatalf("audit page = %+v", ap)
	}
	for _, en := range ap.Items {
		if en.Actor != "token:ops" || en.CorrelationID == "" {
			t.Fatalf("audit entry %+v", en)
		}
	}
	step(get, "/api/v1/audit?cursor="+url.QueryEscape(ap.Next), r, nil, 200, "")
	rec = step(get, "/api/v1/audit?topic="+url.QueryEscape("plant/line-1")+"&type=topic.key_rotated.v1", r, nil, 200, "")
	_ = decode[apitypes.Page[AuditEntry]](t, rec)

	// Tokens and export.
	rec = step(post, "/api/v1/tokens", a, map[string]string{"name": "ci", "role": "operator"}, 201, "")
	ciSecret := decode[apitypes.CreatedToken](t, rec).Secret
	step(post, "/api/v1/topics", ciSecret, map[string]string{"topic": "by-ci"}, 201, "")
	rec = step(get, "/api/v1/audit?actor=token:ci", r, nil, 200, "")
	if len(decode[apitypes.Page[AuditEntry]](t, rec).Items) == 0 {
		t.Fatal("ci's operation not attributed to it")
	}
	step(post, "/api/v1/tokens", a, map[string]string{"name": "ci", "role": "reader"}, 409, "already_exists")
	step(get, "/api/v1/tokens", a, nil, 200, "")
	step(del, "/api/v1/tokens/ci", a, nil, 204, "")
	step(get, "/api/v1/clients", ciSecret, nil, 401, "invalid_token")
	step(del, "/api/v1/tokens/ci", a, nil, 404, "unknown_token")
	rec = step(post, "/api/v1/export/clients/dev-a", a, nil, 200, "")
	if decode[apitypes.ExportedKey](t, rec).Key != keyA {
		t.Fatal("exported client key differs")
	}
	step(post, "/api/v1/export/topics/"+enc1, a, nil, 200, "")
	step(post, "/api/v1/export/topics/"+enc1, o, nil, 403, "forbidden")

	// Removal.
	step(del, "/api/v1/topics/"+url.PathEscape("plant/line-2"), o, nil, 204, "")
	step(del, "/api/v1/topics/"+url.PathEscape("plant/line-2"), o, nil, 404, "unknown_topic")
	step(del, "/api/v1/clients/dev-b?reset_topics=true", o, nil, 204, "")
	step(del, "/api/v1/clients/dev-b", o, nil, 404, "unknown_client")

	// Lists, the event stream, and the leak scan over all of it.
	step(get, "/api/v1/clients", r, nil, 200, "")
	step(get, "/api/v1/topics", r, nil, 200, "")
	e.exchanges = append(e.exchanges, readEventsOnceReal(t, e))
	if n := scanForKeys(t, e.exchanges, e.keyList(), e.logs.String()); n == 0 {
		t.Fatal("the export responses did not show any key: the scan cannot be trusted")
	}
	if len(e.keys) < 6 {
		t.Fatalf("only %d keys collected", len(e.keys))
	}
}

// readEventsOnceReal reads the whole log through SSE.
func readEventsOnceReal(t *testing.T, e *realEnv) exchange {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, get, "/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+e.reader)
	rec := httptest.NewRecorder()
	e.s.Handler().ServeHTTP(rec, req)
	last := e.svc.Position()
	if !strings.Contains(rec.Body.String(), fmt.Sprintf("id: %d\n", last)) {
		t.Fatalf("event stream did not reach position %d", last)
	}
	return exchange{method: get, path: "/api/v1/events", status: rec.Code, body: rec.Body.Bytes()}
}

func TestRealServicePK(t *testing.T) {
	e := newRealEnv(t, core.PubKey, Config{})
	o := e.oper
	for _, n := range []string{"a", "b"} {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		e.expect(e.do(post, "/api/v1/clients", o, map[string]string{"name": n, "public_key": hex.EncodeToString(pub)}), 201, "")
	}
	e.expect(e.do(post, "/api/v1/clients", o, map[string]string{"name": "c", "public_key": "00"}), 400, "invalid_key")
	e.expect(e.do(post, "/api/v1/clients/a/pubkeys/reset", o, nil), 204, "")
	e.expect(e.do(put, "/api/v1/clients/a/pubkeys/b", o, nil), 204, "")
	e.expect(e.do(put, "/api/v1/clients/a/pubkeys/zed", o, nil), 404, "unknown_client")
	e.expect(e.do(del, "/api/v1/clients/a/pubkeys/b", o, nil), 204, "")
	rec0 := e.do(get, "/api/v1/c2key", e.reader, nil)
	e.expect(rec0, 200, "")
	before := decode[C2Key](t, rec0)
	e.expect(e.do(post, "/api/v1/c2key", o, nil), 204, "")
	rec1 := e.do(get, "/api/v1/c2key", e.reader, nil)
	e.expect(rec1, 200, "")
	after := decode[C2Key](t, rec1)
	if after.Suite != "standard" || len(after.PublicKey) != 64 || after.PublicKey == before.PublicKey || after.KeyVersion <= before.KeyVersion {
		t.Fatalf("c2 key before %+v after rotation %+v", before, after)
	}
	e.expect(e.do(post, "/api/v1/clients/a/key", o, nil), 400, "unsupported_in_mode")
	e.expect(e.do(post, "/api/v1/topics", o, map[string]string{"topic": "t"}), 201, "")
	e.expect(e.do(put, "/api/v1/clients/a/topics/t", o, nil), 204, "")
	rec := e.do(get, "/api/v1/clients/a", e.reader, nil)
	e.expect(rec, 200, "")
	if c := decode[Client](t, rec); c.Topics != 1 || c.Pending == 0 {
		t.Fatalf("client a = %+v", c)
	}
	e.snapKeys(t)
	scanForKeys(t, e.exchanges, e.keyList(), e.logs.String())
}

func TestRealServicePagination(t *testing.T) {
	e := newRealEnv(t, core.SymKey, Config{})
	ctx := context.Background()
	for i := range 250 {
		key := make([]byte, 32)
		key[0] = byte(i)
		if _, err := e.svc.NewClient(ctx, c2.Origin{Actor: "system"}, c2.ByName(fmt.Sprintf("d%03d", i)), key, domain.RoleBoth); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		path := "/api/v1/clients"
		if cursor != "" {
			path += "?cursor=" + url.QueryEscape(cursor)
		}
		rec := e.do(get, path, e.reader, nil)
		e.expect(rec, 200, "")
		p := decode[apitypes.Page[Client]](t, rec)
		pages++
		for _, c := range p.Items {
			if seen[c.Name] {
				t.Fatalf("duplicate %s", c.Name)
			}
			seen[c.Name] = true
		}
		if p.Next == "" {
			break
		}
		cursor = p.Next
	}
	if len(seen) != 250 || pages != 3 {
		t.Fatalf("walked %d clients in %d pages", len(seen), pages)
	}
	e.expect(e.do(get, "/api/v1/clients?cursor="+encodeCursor("not-a-number"), e.reader, nil), 400, "invalid_cursor")
}

func TestRealServiceSSEResume(t *testing.T) {
	e := newRealEnv(t, core.SymKey, Config{})
	srv := httptest.NewServer(e.s.Handler())
	t.Cleanup(srv.Close)
	for _, tp := range []string{"a", "b", "c"} {
		e.expect(e.do(post, "/api/v1/topics", e.oper, map[string]string{"topic": tp}), 201, "")
	}
	last := e.svc.Position()
	s1 := openStream(t, srv, e.reader)
	var got []uint64
	for range 2 {
		f, err := s1.next()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f.data.Position)
	}
	s1.close()
	e.expect(e.do(post, "/api/v1/topics", e.oper, map[string]string{"topic": "d"}), 201, "")
	s2 := openStream(t, srv, e.reader, HeaderLastEventID, fmt.Sprint(got[len(got)-1]))
	e.expect(e.do(post, "/api/v1/topics", e.oper, map[string]string{"topic": "e"}), 201, "")
	end := e.svc.Position()
	for got[len(got)-1] < end {
		f, err := s2.next()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f.data.Position)
	}
	for i, p := range got {
		if p != uint64(i+1) {
			t.Fatalf("positions %v: gap or duplicate at %d", got, i)
		}
	}
	if end <= last {
		t.Fatal("no live events")
	}
}
