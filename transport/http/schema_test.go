package http

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	nethttp "net/http"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/e4c2/e4c2/automation"
	"github.com/e4c2/e4c2/transport/http/apitypes"
)

// The OpenAPI document and the router come from the same route table, so
// TestOpenAPICoversRoutes cannot notice a body that differs from its
// schema. Two checks close that gap:
//
//   - TestOpenAPISchemasMatchTypes compares every component schema with the
//     Go type the handlers write or read for it, field by field (name, JSON
//     type, required or not): a field added to an apitypes type without
//     its documentation fails here, whatever the tests happen to send.
//   - every harness (fake and real backends) validates each JSON answer
//     its test received against the served document when the test ends
//     (checkAnswers), so what handlers really return is checked too.

// schemaTypes maps each component schema of the document to the Go type
// of its JSON body. Text (metrics) and Object (the document itself) are
// not JSON objects of this package.
var schemaTypes = map[string]any{
	"Status":            apitypes.Status{},
	"Count":             apitypes.Count{},
	"Error":             apitypes.Error{},
	"ErrorDetail":       apitypes.ErrorDetail{},
	"C2Key":             apitypes.C2Key{},
	"NewClient":         apitypes.NewClient{},
	"Client":            apitypes.Client{},
	"KeySync":           apitypes.KeySync{},
	"ClientSync":        apitypes.ClientSync{},
	"Fleet":             apitypes.Fleet{},
	"ResyncResult":      apitypes.ResyncResult{},
	"ReleaseResult":     apitypes.ReleaseResult{},
	"ClientPage":        apitypes.Page[apitypes.Client]{},
	"NewTopic":          apitypes.NewTopic{},
	"TopicResult":       apitypes.TopicResult{},
	"Topic":             apitypes.Topic{},
	"TopicPage":         apitypes.Page[apitypes.Topic]{},
	"ProtectRequest":    apitypes.ProtectRequest{},
	"ProtectResponse":   apitypes.ProtectResponse{},
	"UnprotectRequest":  apitypes.UnprotectRequest{},
	"UnprotectResponse": apitypes.UnprotectResponse{},
	"BatchAttach":       apitypes.BatchAttach{},
	"BatchReset":        apitypes.BatchReset{},
	"BatchResult":       apitypes.BatchResult{},
	"AuditEntry":        apitypes.AuditEntry{},
	"AuditPage":         apitypes.Page[apitypes.AuditEntry]{},
	"Delivery":          apitypes.Delivery{},
	"DeliveryPage":      apitypes.Page[apitypes.Delivery]{},
	"Event":             apitypes.Event{},
	"NewToken":          apitypes.NewToken{},
	"Token":             apitypes.Token{},
	"CreatedToken":      apitypes.CreatedToken{},
	"TokenList":         apitypes.TokenList{},
	"ExportedKey":       apitypes.ExportedKey{},
	"Rule":              apitypes.Rule{},
	"RuleList":          apitypes.RuleList{},
	"PauseRule":         apitypes.PauseRule{},
	"DryRunRequest":     apitypes.DryRunRequest{},
	"DryRunEvent":       apitypes.DryRunEvent{},
	"RulePlan":          apitypes.RulePlan{},
	"Finding":           apitypes.Finding{},
	"FindingList":       apitypes.FindingList{},
	"MonitorStatus":     apitypes.MonitorStatus{},
	// Bodies the server decodes into its own types.
	"RuleSpec":    automation.Spec{},
	"SampleEvent": sampleEvent{},
}

var notJSONObjects = []string{"Text", "Object"}

// servedDoc fetches /openapi.json from a fresh server.
func servedDoc(t *testing.T) map[string]any {
	t.Helper()
	h := newHarness(t, Config{Metrics: nethttp.NotFoundHandler()})
	rec := h.do(get, "/openapi.json", h.reader, nil)
	h.expect(rec, 200, "")
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func docSchemas(doc map[string]any) map[string]any {
	comp, _ := doc["components"].(map[string]any)
	s, _ := comp["schemas"].(map[string]any)
	return s
}

// responseSchemas returns the schemas some answer may carry: those the
// route table names as a response, and every schema they reference. A
// field a server writes without omitempty is always in such an answer, so
// the schema must list it as required.
func responseSchemas(s *Server, schemas map[string]any) map[string]bool {
	out := map[string]bool{"Error": true}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if r, ok := x["$ref"].(string); ok {
				name := strings.TrimPrefix(r, "#/components/schemas/")
				if !out[name] {
					out[name] = true
					walk(schemas[name])
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	for _, r := range s.routes {
		if r.resp != "" && !out[r.resp] {
			out[r.resp] = true
			walk(schemas[r.resp])
		}
	}
	return out
}

func TestOpenAPISchemasMatchTypes(t *testing.T) {
	doc := servedDoc(t)
	schemas := docSchemas(doc)
	if len(schemas) < 30 {
		t.Fatalf("only %d schemas in the document", len(schemas))
	}
	h := newHarness(t, Config{Metrics: nethttp.NotFoundHandler()})
	responses := responseSchemas(h.s, schemas)
	for name := range schemas {
		if _, ok := schemaTypes[name]; !ok && !slices.Contains(notJSONObjects, name) {
			t.Errorf("schema %s has no Go type in schemaTypes", name)
		}
	}
	names := make([]string, 0, len(schemaTypes))
	for name := range schemaTypes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		sch, ok := schemas[name].(map[string]any)
		if !ok {
			t.Errorf("schemaTypes names %s, which the document does not define", name)
			continue
		}
		c := typeCheck{schemas: schemas, response: responses[name]}
		c.compare(name, sch, reflect.TypeOf(schemaTypes[name]))
		for _, p := range c.problems {
			t.Error(p)
		}
	}
}

// typeCheck compares a schema with a Go type as encoding/json writes it.
type typeCheck struct {
	schemas  map[string]any
	response bool // the type is written by the server: no omitempty means required
	problems []string
}

func (c *typeCheck) fail(path, format string, args ...any) {
	c.problems = append(c.problems, path+": "+fmt.Sprintf(format, args...))
}

var (
	timeType   = reflect.TypeOf(time.Time{})
	rawType    = reflect.TypeOf(json.RawMessage(nil))
	marshaler  = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
	anyType    = reflect.TypeOf((*any)(nil)).Elem()
	bytesType  = reflect.TypeOf([]byte(nil))
	refPattern = regexp.MustCompile(`^#/components/schemas/(\w+)$`)
)

func (c *typeCheck) resolve(sch map[string]any) (map[string]any, string) {
	r, ok := sch["$ref"].(string)
	if !ok {
		return sch, ""
	}
	m := refPattern.FindStringSubmatch(r)
	if m == nil {
		return nil, r
	}
	s, _ := c.schemas[m[1]].(map[string]any)
	return s, m[1]
}

func (c *typeCheck) compare(path string, sch map[string]any, t reflect.Type) {
	sch, ref := c.resolve(sch)
	if sch == nil {
		c.fail(path, "unresolvable $ref %s", ref)
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	typ, _ := sch["type"].(string)
	switch {
	case t == anyType:
		return // free-form (error details): any schema fits
	case t == rawType:
		// Raw JSON kept as written: a $ref or an object documents it.
		if ref == "" && typ != "object" {
			c.fail(path, "raw JSON documented as %q", typ)
		}
		return
	case t == timeType:
		if typ != "string" || sch["format"] != "date-time" {
			c.fail(path, "time documented as %v/%v, want string/date-time", typ, sch["format"])
		}
		return
	case t == bytesType:
		if typ != "string" || sch["format"] != "byte" {
			c.fail(path, "[]byte documented as %v/%v, want string/byte (base64)", typ, sch["format"])
		}
		return
	case t.Implements(marshaler):
		// Ask the type itself what it writes.
		b, err := json.Marshal(reflect.Zero(t).Interface())
		if err != nil || len(b) == 0 {
			c.fail(path, "%s does not marshal: %v", t, err)
			return
		}
		if want := jsonKind(b[0]); want != typ {
			c.fail(path, "%s marshals as %s, documented as %q", t, want, typ)
		}
		return
	}
	want := map[reflect.Kind]string{
		reflect.String: "string", reflect.Bool: "boolean",
		reflect.Int: "integer", reflect.Int8: "integer", reflect.Int16: "integer", reflect.Int32: "integer", reflect.Int64: "integer",
		reflect.Uint: "integer", reflect.Uint8: "integer", reflect.Uint16: "integer", reflect.Uint32: "integer", reflect.Uint64: "integer",
		reflect.Float32: "number", reflect.Float64: "number",
		reflect.Slice: "array", reflect.Array: "array", reflect.Struct: "object", reflect.Map: "object",
	}[t.Kind()]
	if want != typ {
		c.fail(path, "Go %s is JSON %q, documented as %q", t, want, typ)
		return
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		items, _ := sch["items"].(map[string]any)
		if items == nil {
			c.fail(path, "array without items")
			return
		}
		c.compare(path+"[]", items, t.Elem())
	case reflect.Struct:
		c.compareObject(path, sch, t)
	}
}

func jsonKind(b byte) string {
	switch {
	case b == '"':
		return "string"
	case b == '{':
		return "object"
	case b == '[':
		return "array"
	case b == 't' || b == 'f':
		return "boolean"
	case b == '-' || b >= '0' && b <= '9':
		return "integer"
	}
	return "null"
}

// jsonField is one field as encoding/json writes it.
type jsonField struct {
	name      string
	typ       reflect.Type
	omittable bool // omitempty or omitzero: may be absent
}

// jsonFields lists the fields encoding/json writes for t, embedded
// structs flattened.
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		omit := false
		for _, o := range strings.Split(opts, ",") {
			omit = omit || o == "omitempty" || o == "omitzero"
		}
		out = append(out, jsonField{name: name, typ: f.Type, omittable: omit})
	}
	return out
}

func (c *typeCheck) compareObject(path string, sch map[string]any, t reflect.Type) {
	props, _ := sch["properties"].(map[string]any)
	if sch["additionalProperties"] != false {
		c.fail(path, "object schema allows undocumented properties (additionalProperties is not false)")
	}
	required := map[string]bool{}
	if rs, ok := sch["required"].([]any); ok {
		for _, r := range rs {
			required[r.(string)] = true
		}
	}
	seen := map[string]bool{}
	for _, f := range jsonFields(t) {
		fp := path + "." + f.name
		seen[f.name] = true
		p, ok := props[f.name].(map[string]any)
		if !ok {
			c.fail(fp, "field of %s is not documented", t)
			continue
		}
		switch {
		case required[f.name] && f.omittable:
			c.fail(fp, "documented as required, but the Go field may be omitted (omitempty/omitzero)")
		case c.response && !required[f.name] && !f.omittable:
			c.fail(fp, "always written (no omitempty), but not documented as required")
		}
		c.compare(fp, p, f.typ)
	}
	for name := range props {
		if !seen[name] {
			c.fail(path+"."+name, "documented, but %s has no such field", t)
		}
	}
	for name := range required {
		if !seen[name] {
			c.fail(path+"."+name, "required, but %s has no such field", t)
		}
	}
}

// TestSchemaChecksFail keeps both checks honest: an undocumented field, a
// wrong JSON type and a missing required property are each reported.
func TestSchemaChecksFail(t *testing.T) {
	type extra struct {
		Client   string `json:"client"`
		New      int    `json:"new_field"`
		Optional string `json:"opt,omitempty"`
	}
	schemas := map[string]any{"X": map[string]any{"type": "object", "additionalProperties": false,
		"required": []any{"client", "opt"},
		"properties": map[string]any{
			"client": map[string]any{"type": "integer"},
			"opt":    map[string]any{"type": "string"},
		}}}
	c := typeCheck{schemas: schemas, response: true}
	c.compare("X", schemas["X"].(map[string]any), reflect.TypeOf(extra{}))
	for _, want := range []string{"X.new_field: field", "X.client: Go string", "X.opt: documented as required"} {
		found := false
		for _, p := range c.problems {
			found = found || strings.HasPrefix(p, want)
		}
		if !found {
			t.Errorf("type check did not report %q; got %q", want, c.problems)
		}
	}
	v := answerCheck{schemas: schemas}
	v.validate("X", map[string]any{"$ref": "#/components/schemas/X"}, map[string]any{"client": "a", "new_field": 1.0})
	for _, want := range []string{"X: undocumented property new_field", "X.client: string", "X: required property opt"} {
		found := false
		for _, p := range v.problems {
			found = found || strings.HasPrefix(p, want)
		}
		if !found {
			t.Errorf("answer check did not report %q; got %q", want, v.problems)
		}
	}
}

// answerCheck validates a decoded JSON value against a schema of the
// document.
type answerCheck struct {
	schemas  map[string]any
	problems []string
}

func (v *answerCheck) fail(path, format string, args ...any) {
	v.problems = append(v.problems, path+": "+fmt.Sprintf(format, args...))
}

func (v *answerCheck) validate(path string, sch map[string]any, val any) {
	if r, ok := sch["$ref"].(string); ok {
		m := refPattern.FindStringSubmatch(r)
		if m == nil {
			v.fail(path, "unresolvable $ref %s", r)
			return
		}
		sch, _ = v.schemas[m[1]].(map[string]any)
	}
	typ, _ := sch["type"].(string)
	switch typ {
	case "object":
		obj, ok := val.(map[string]any)
		if !ok {
			v.fail(path, "%s, documented as an object", jsonTypeOf(val))
			return
		}
		props, declared := sch["properties"].(map[string]any)
		if !declared {
			return // a free-form object
		}
		for k, e := range obj {
			p, ok := props[k].(map[string]any)
			if !ok {
				v.fail(path, "undocumented property %s", k)
				continue
			}
			v.validate(path+"."+k, p, e)
		}
		if rs, ok := sch["required"].([]any); ok {
			for _, r := range rs {
				if _, ok := obj[r.(string)]; !ok {
					v.fail(path, "required property %s missing", r)
				}
			}
		}
	case "array":
		arr, ok := val.([]any)
		if !ok {
			v.fail(path, "%s, documented as an array", jsonTypeOf(val))
			return
		}
		items, _ := sch["items"].(map[string]any)
		for i, e := range arr {
			v.validate(fmt.Sprintf("%s[%d]", path, i), items, e)
		}
	case "string":
		s, ok := val.(string)
		if !ok {
			v.fail(path, "%s, documented as a string", jsonTypeOf(val))
			return
		}
		switch sch["format"] {
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				v.fail(path, "not an RFC 3339 time: %q", s)
			}
		case "byte":
			if _, err := base64.StdEncoding.DecodeString(s); err != nil {
				v.fail(path, "not base64")
			}
		}
		if enum, ok := sch["enum"].([]any); ok && !slices.Contains(enum, any(s)) {
			v.fail(path, "%q is not one of %v", s, enum)
		}
	case "integer":
		f, ok := val.(float64)
		if !ok || f != math.Trunc(f) {
			v.fail(path, "%s, documented as an integer", jsonTypeOf(val))
			return
		}
		if m, ok := sch["minimum"].(float64); ok && f < m {
			v.fail(path, "%v below the minimum %v", f, m)
		}
	case "boolean":
		if _, ok := val.(bool); !ok {
			v.fail(path, "%s, documented as a boolean", jsonTypeOf(val))
		}
	}
}

func jsonTypeOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	}
	return fmt.Sprintf("%T", v)
}

// answerSchema returns the schema documented for an answer of status to
// method path ("" when none applies: no JSON, an undocumented status, a
// path no route serves).
func (h *harness) answerSchema(method, path string, status int) string {
	path, _, _ = strings.Cut(path, "?")
	var best *route
	bestParams := -1
	for i := range h.s.routes {
		r := &h.s.routes[i]
		if r.method != method || !routeMatches(r.path, path) {
			continue
		}
		if n := strings.Count(r.path, ":"); best == nil || n < bestParams {
			best, bestParams = r, n // static segments win, as in echo
		}
	}
	switch {
	case best == nil:
		return ""
	case status >= 400:
		return "Error"
	case status == best.status || best.id == "newTopic" && status == nethttp.StatusOK:
		if best.stream || best.resp == "Text" || best.resp == "Object" {
			return ""
		}
		return best.resp
	}
	return ""
}

func routeMatches(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if !strings.HasPrefix(ps[i], ":") && ps[i] != xs[i] || xs[i] == "" && ps[i] != "" {
			return false
		}
	}
	return true
}

// checkAnswers validates every JSON answer the harness recorded against
// the served document. It runs when the test ends (a cleanup of every
// harness), so each handler test is also a schema test.
func (h *harness) checkAnswers() {
	var doc map[string]any
	if err := json.Unmarshal(h.s.openapi, &doc); err != nil {
		h.t.Errorf("openapi document: %v", err)
		return
	}
	v := answerCheck{schemas: docSchemas(doc)}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, x := range h.exchanges {
		name := h.answerSchema(x.method, x.path, x.status)
		if name == "" || len(x.body) == 0 {
			continue
		}
		var val any
		if err := json.Unmarshal(x.body, &val); err != nil {
			continue // not JSON (echo's plain-text answers): nothing documented to check
		}
		before := len(v.problems)
		v.validate(name, map[string]any{"$ref": "#/components/schemas/" + name}, val)
		for _, p := range v.problems[before:] {
			h.t.Errorf("%s %s (%d): answer does not match schema: %s", x.method, x.path, x.status, p)
		}
	}
}

// TestAnswerSchemaLookup checks the route matching of checkAnswers, which
// would otherwise pass by matching nothing.
func TestAnswerSchemaLookup(t *testing.T) {
	h := newHarness(t, Config{})
	cases := []struct {
		method, path string
		status       int
		want         string
	}{
		{get, "/api/v1/topics/t%2F1", 200, "Topic"},
		{get, "/api/v1/topics?limit=2", 200, "TopicPage"},
		{post, "/api/v1/topics", 201, "TopicResult"},
		{post, "/api/v1/topics", 200, "TopicResult"},
		{post, "/api/v1/rules/dry-run", 200, "RulePlan"},
		{post, "/api/v1/rules/r1/dry-run", 200, "RulePlan"},
		{post, "/api/v1/clients/dev/pubkeys/reset", 204, ""},
		{get, "/api/v1/clients/dev", 404, "Error"},
		{get, "/api/v1/events", 200, ""},
		{get, "/api/v1/nowhere", 404, ""},
	}
	for _, c := range cases {
		if got := h.answerSchema(c.method, c.path, c.status); got != c.want {
			t.Errorf("%s %s %d: schema %q, want %q", c.method, c.path, c.status, got, c.want)
		}
	}
}
