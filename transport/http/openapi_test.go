package http

import (
	"encoding/json"
	nethttp "net/http"
	"sort"
	"strings"
	"testing"
)

// TestOpenAPICoversRoutes walks echo's registered routes and the served
// document: every route must be documented and every documented operation
// registered.
func TestOpenAPICoversRoutes(t *testing.T) {
	for _, cfg := range []Config{{}, {Metrics: nethttp.NotFoundHandler()}} {
		h := newHarness(t, cfg)
		rec := h.do(get, "/openapi.json", h.reader, nil)
		h.expect(rec, 200, "")
		var doc struct {
			OpenAPI string                                `json:"openapi"`
			Paths   map[string]map[string]json.RawMessage `json:"paths"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			t.Fatalf("openapi.json: %v", err)
		}
		if !strings.HasPrefix(doc.OpenAPI, "3.") {
			t.Fatalf("openapi version %q", doc.OpenAPI)
		}
		documented := map[string]bool{}
		for p, ops := range doc.Paths {
			for m, raw := range ops {
				documented[strings.ToUpper(m)+" "+p] = true
				var op struct {
					Parameters []struct{ Name, In string } `json:"parameters"`
					Responses  map[string]any              `json:"responses"`
				}
				if err := json.Unmarshal(raw, &op); err != nil {
					t.Fatalf("%s %s: %v", m, p, err)
				}
				if len(op.Responses) == 0 {
					t.Errorf("%s %s: no responses", m, p)
				}
				// Every {param} of the path is declared as a path parameter.
				for _, seg := range strings.Split(p, "/") {
					if strings.HasPrefix(seg, "{") {
						name := strings.Trim(seg, "{}")
						found := false
						for _, prm := range op.Parameters {
							found = found || (prm.In == "path" && prm.Name == name)
						}
						if !found {
							t.Errorf("%s %s: path parameter %s undeclared", m, p, name)
						}
					}
				}
			}
		}
		registered := map[string]bool{}
		for _, r := range h.s.echo.Routes() {
			if strings.HasPrefix(r.Method, "echo_") { // echo's internal not-found routes
				continue
			}
			p, _ := openapiPath(r.Path)
			registered[r.Method+" "+p] = true
		}
		if len(registered) < 30 {
			t.Fatalf("only %d routes registered", len(registered))
		}
		var missing, extra []string
		for k := range registered {
			if !documented[k] {
				missing = append(missing, k)
			}
		}
		for k := range documented {
			if !registered[k] {
				extra = append(extra, k)
			}
		}
		sort.Strings(missing)
		sort.Strings(extra)
		if len(missing) > 0 || len(extra) > 0 {
			t.Fatalf("undocumented routes %v; documented but unregistered %v", missing, extra)
		}
		if cfg.Metrics != nil && !registered["GET /metrics"] {
			t.Fatal("metrics route not registered")
		}
	}
}

func TestOpenAPIPath(t *testing.T) {
	p, params := openapiPath("/api/v1/clients/:client/pubkeys/:source")
	if p != "/api/v1/clients/{client}/pubkeys/{source}" || len(params) != 2 || params[0] != "client" || params[1] != "source" {
		t.Fatalf("openapiPath = %q %v", p, params)
	}
}
