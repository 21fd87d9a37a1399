package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	nethttp "net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/c2test"
	"github.com/e4c2/e4c2/suites/core"
	httpapi "github.com/e4c2/e4c2/transport/http"
)

// benchClients is the fleet size the clients page must serve in under
// 100 ms (server side).
const benchClients = 100_000

// fleet is a real C2 service (memory store, sealing, projections) with
// benchClients registered clients, and the secret of a reader token.
func fleet(b *testing.B) (*c2.Service, string) {
	b.Helper()
	svc, _ := c2test.Service(b, core.SymKey, func(c *c2.Config) { c.AuditMax = 10_000 })
	ctx := context.Background()
	o := c2.Origin{Actor: "bench"}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := bytes.Repeat([]byte{7}, 32)
			for i := w; i < benchClients; i += 2 {
				if _, err := svc.NewClient(ctx, o, c2.ByName(fmt.Sprintf("dev-%06d", i)), key, domain.RoleBoth); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	secret, _, err := svc.CreateToken(ctx, o, "bench", domain.TokenReader)
	if err != nil {
		b.Fatal(err)
	}
	return svc, secret
}

// benchPage measures one console page, server side: session and token
// check, the backend's queries and the template, for a logged-in reader.
func benchPage(b *testing.B, svc *c2.Service, secret, target string) {
	if n := svc.CountClients(); n != benchClients {
		b.Fatalf("%d clients", n)
	}
	c, err := New(Config{Backend: httpapi.NewServiceBackend(svc), Position: svc.Position})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := svc.TokenByHash(sha256.Sum256([]byte(secret)))
	if err != nil {
		b.Fatal(err)
	}
	id := c.sessions.create(tok.Hash, tok.Name, httpapi.RoleReader)
	h := c.Handler()
	do := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(nethttp.MethodGet, target, nil)
		req.AddCookie(&nethttp.Cookie{Name: cookieName, Value: id})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := do(); rec.Code != nethttp.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`id="client-list"`)) {
		b.Fatalf("GET %s = %d\n%.500s", target, rec.Code, rec.Body.String())
	}
	b.ReportAllocs()
	for b.Loop() {
		if rec := do(); rec.Code != nethttp.StatusOK {
			b.Fatalf("GET %s = %d", target, rec.Code)
		}
	}
}

// BenchmarkClientsPage is the clients page at 100,000 clients: the first
// page, a page deep in the list, an exact search, and a search matching
// nothing (a scan of every client). Each must answer in under 100 ms.
func BenchmarkClientsPage(b *testing.B) {
	svc, secret := fleet(b)
	b.Run("first", func(b *testing.B) { benchPage(b, svc, secret, "/ui/clients") })
	b.Run("deep", func(b *testing.B) { benchPage(b, svc, secret, "/ui/clients?cursor=99000") })
	b.Run("search-exact", func(b *testing.B) { benchPage(b, svc, secret, "/ui/clients?q=dev-054321") })
	b.Run("search-none", func(b *testing.B) { benchPage(b, svc, secret, "/ui/clients?q=nobody") })
}
