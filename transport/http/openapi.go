package http

import (
	"encoding/json"
	"fmt"
	"maps"
	nethttp "net/http"
	"strconv"
	"strings"
)

// obj is a JSON object literal in the OpenAPI document.
type obj = map[string]any

// openapiPath converts an echo path ("/clients/:client") to OpenAPI form
// ("/clients/{client}") and lists its parameters.
func openapiPath(p string) (string, []string) {
	segs := strings.Split(p, "/")
	var params []string
	for i, s := range segs {
		if strings.HasPrefix(s, ":") {
			params = append(params, s[1:])
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/"), params
}

func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

func str(desc string) obj { return obj{"type": "string", "description": desc} }

func object(required []string, props obj) obj {
	o := obj{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func pageOf(item string) obj {
	return object([]string{"items"}, obj{
		"items": obj{"type": "array", "items": ref(item)},
		"next":  str("opaque cursor of the next page; absent on the last page"),
	})
}

// schemas are the component schemas named by the route table.
func schemas() obj {
	tm := obj{"type": "string", "format": "date-time"}
	u64 := obj{"type": "integer", "format": "int64", "minimum": 0}
	integer := obj{"type": "integer"}
	b64 := obj{"type": "string", "format": "byte"}
	errDetail := object([]string{"code", "message"}, obj{
		"code": str("stable error code"), "message": str("human-readable message"), "request_id": str("request id"),
		"details": obj{"type": "object", "description": "structured detail of some codes (invalid_expression: field, line, column)"},
	})
	all := obj{
		"Status":      object([]string{"status"}, obj{"status": str("ok / ready")}),
		"Object":      obj{"type": "object"},
		"Text":        obj{"type": "string"},
		"Error":       object([]string{"error"}, obj{"error": errDetail}),
		"ErrorDetail": errDetail,
		"Count":       object([]string{"count"}, obj{"count": integer}),
		"C2Key": object([]string{"suite", "key_version", "public_key"}, obj{
			"suite": str("crypto suite"), "key_version": u64, "public_key": str("C2 public key, hex"),
		}),
		"NewClient": object(nil, obj{
			"name":       str("client name (1..255 bytes UTF-8); name or id is required"),
			"id":         str("client id, 16 bytes lowercase hex; must match the name if both are given"),
			"key":        str("SK mode: the client's symmetric key, hex"),
			"public_key": str("PK mode: the client's public key, hex"),
			"role":       obj{"type": "string", "enum": []string{"both", "publisher", "consumer"}},
			"replace":    obj{"type": "boolean", "description": "allow an existing client: keep its role, replace its key like a rotation (SK: SetIdKey under the key the device holds)"},
		}),
		"Client": object([]string{"id", "topics", "pending"}, obj{
			"name": str("client name"), "id": str("client id, hex"), "role": str("rotation role"),
			"key_version": u64, "topics": integer, "pending": integer, "created_at": tm, "updated_at": tm,
			"sync": ref("ClientSync"),
		}),
		"KeySync": object([]string{"desired", "accepted", "confirmed"}, obj{
			"desired":   obj{"type": "integer", "format": "int64", "minimum": 0, "description": "key version the C2 wants the device to hold"},
			"accepted":  obj{"type": "integer", "format": "int64", "minimum": 0, "description": "newest version a broker accepted (0: none)"},
			"confirmed": obj{"type": "integer", "format": "int64", "minimum": 0, "description": "newest version the device's own MQTT session took (0: none)"},
		}),
		"ClientSync": object([]string{"status", "seen", "pending", "identity", "topics"}, obj{
			"status":         obj{"type": "string", "enum": []string{"never_seen", "in_sync", "lagging"}},
			"evidence":       obj{"type": "string", "enum": []string{"confirmed", "accepted"}, "description": "grade of an in_sync status: confirmed (every key confirmed by the device's session) or accepted (some only accepted by a broker)"},
			"seen":           obj{"type": "boolean", "description": "connected since its registration"},
			"released":       obj{"type": "boolean", "description": "never seen, but an operator released its commands to an external broker"},
			"first_seen":     tm,
			"pending":        integer,
			"oldest_pending": tm,
			"identity":       ref("KeySync"),
			"c2key":          ref("KeySync"),
			"topics": obj{"type": "array", "items": object([]string{"topic", "hash", "desired", "accepted", "confirmed"}, obj{
				"topic": str("topic name"), "hash": str("topichash, hex"), "desired": u64, "accepted": u64, "confirmed": u64,
			})},
			"pubkeys": obj{"type": "array", "description": "PK: peers whose public keys the device was sent; versions are the peer's key versions, desired 0 = should not hold it, accepted/confirmed 0 = the newest command of that grade left it without",
				"items": object([]string{"client", "id", "desired", "accepted", "confirmed"}, obj{
					"client": str("peer name (or id)"), "id": str("peer id, hex"),
					"removed": obj{"type": "boolean", "description": "the peer was removed: its key is not resent"},
					"desired": u64, "accepted": u64, "confirmed": u64,
				})},
		}),
		"Fleet": object([]string{"clients", "in_sync", "lagging", "never_seen", "pending", "waiting", "released"}, obj{
			"clients": integer, "in_sync": integer, "lagging": integer, "never_seen": integer,
			"pending":  obj{"type": "integer", "description": "queued commands"},
			"waiting":  obj{"type": "integer", "description": "queued commands of never-seen clients nobody released (external broker: held in the C2's outbox)"},
			"released": obj{"type": "integer", "description": "never-seen clients an operator released"},
		}),
		"ReleaseResult": object([]string{"released", "commands"}, obj{
			"client":   str("client reference as given"),
			"released": obj{"type": "integer", "description": "devices newly released (0: seen or released already)"},
			"commands": obj{"type": "integer", "description": "their queued commands, which may go to the broker now"},
		}),
		"ResyncResult": object([]string{"queued"}, obj{
			"client": str("client reference as given"), "queued": obj{"type": "integer", "description": "commands queued"},
		}),
		"ClientPage": pageOf("Client"),
		"NewTopic":   object([]string{"topic"}, obj{"topic": str("topic name")}),
		"TopicResult": object([]string{"topic", "rotated"}, obj{
			"topic": str("topic name"), "rotated": obj{"type": "boolean", "description": "true if the topic existed and its key was rotated (status 200), false if created (201)"},
		}),
		"Topic": object([]string{"name", "hash", "clients"}, obj{
			"name": str("topic name"), "hash": str("topichash, hex"), "key_version": u64,
			"clients": integer, "created_at": tm, "rotated_at": tm,
		}),
		"TopicPage":         pageOf("Topic"),
		"ProtectRequest":    object(nil, obj{"payload": b64}),
		"ProtectResponse":   object([]string{"protected"}, obj{"protected": b64}),
		"UnprotectRequest":  object([]string{"protected"}, obj{"protected": b64}),
		"UnprotectResponse": object([]string{"payload"}, obj{"payload": b64}),
		"BatchAttach": object([]string{"topic", "clients"}, obj{
			"topic": str("topic name"), "clients": obj{"type": "array", "items": obj{"type": "string"}},
		}),
		"BatchReset": object([]string{"clients"}, obj{"clients": obj{"type": "array", "items": obj{"type": "string"}}}),
		"BatchResult": object([]string{"succeeded", "failed", "results"}, obj{
			"succeeded": integer, "failed": integer,
			"results": obj{"type": "array", "items": object([]string{"client", "ok"}, obj{
				"client": str("client reference as given"), "ok": obj{"type": "boolean"}, "error": ref("ErrorDetail"),
			})},
		}),
		"AuditEntry": object([]string{"position", "time", "type", "actor"}, obj{
			"position": u64, "time": tm, "type": str("event type"), "actor": str("who did it"),
			"event_id": str("event id"), "stream": str("stream"),
			"client": str("client name, when known"), "client_id": str("client id, hex"),
			"topic": str("topic name, when known"), "topic_hash": str("topic hash, hex"),
			"key_version": u64, "command": str("command name"), "recipients": integer,
			"correlation_id": str("request id"), "causation_id": str("causation id"), "summary": str("detail"),
		}),
		"AuditPage": pageOf("AuditEntry"),
		"Delivery": object([]string{"command_id", "client", "command", "queued_at"}, obj{
			"command_id": str("queue reference"), "seq": u64, "client": str("client id, hex"), "command": str("command name"),
			"topic": str("topic hash, hex"), "queued_at": tm, "position": u64, "key_version": u64,
		}),
		"DeliveryPage": pageOf("Delivery"),
		"Event": object([]string{"position", "stream", "version", "type", "time"}, obj{
			"position": u64, "stream": str("stream"), "version": u64, "type": str("event wire type"), "time": tm,
			"actor": str("actor"), "correlation_id": str("correlation id"), "causation_id": str("causation id"),
			"data": obj{"type": "object", "description": "public part of the payload (no secret)"},
		}),
		"NewToken": object([]string{"name", "role"}, obj{
			"name": str("1..64 characters of [A-Za-z0-9._-]"),
			"role": obj{"type": "string", "enum": []string{"admin", "operator", "reader"}},
		}),
		"Token": object([]string{"name", "role"}, obj{
			"name": str("token name"), "role": str("role"), "created_at": tm, "created_by": str("actor"),
		}),
		"CreatedToken": object([]string{"name", "role", "token"}, obj{
			"name": str("token name"), "role": str("role"), "created_at": tm, "created_by": str("actor"),
			"token": str("the secret, shown only in this response"),
		}),
		"TokenList": object([]string{"items"}, obj{"items": obj{"type": "array", "items": ref("Token")}}),
		"ExportedKey": object([]string{"key"}, obj{
			"client": str("client"), "topic": str("topic"), "key": str("key material, hex"),
		}),
	}
	maps.Copy(all, ruleSchemas())
	maps.Copy(all, monitorSchemas())
	return all
}

var queryDocs = map[string]obj{
	"cursor":       {"type": "string", "description": "opaque cursor from the previous page's next"},
	"limit":        {"type": "integer", "minimum": 1, "description": "page size (default 100; larger values are clamped to the maximum, default 1000)"},
	"client":       {"type": "string", "description": "client name or hex id"},
	"topic":        {"type": "string", "description": "topic name"},
	"actor":        {"type": "string", "description": "actor, e.g. token:ops"},
	"from":         {"type": "string", "description": "start (RFC 3339 time for audit, global position for events)"},
	"to":           {"type": "string", "format": "date-time", "description": "end time, exclusive (RFC 3339)"},
	"type":         {"type": "string", "description": "event wire type, e.g. topic.key_rotated.v1"},
	"reset_topics": {"type": "boolean", "description": "queue ResetTopics to the device before removing it"},
	"full":         {"type": "boolean", "description": "resend every current key, held or not (default false: only what the device lacks)"},
	"since":        {"type": "string", "format": "date-time", "description": "recorded at or after this time (RFC 3339)"},
	"kind":         {"type": "string", "description": "finding kind, e.g. old_key, forged, plaintext, replay, rate_spike"},
	"max_limit":    {"type": "integer", "minimum": 1, "maximum": 1000, "description": "at most this many (default 100, maximum 1000; outside: 400 invalid_limit)"},
}

// errorStatuses documents the error answers any authenticated route may give.
var errorStatuses = []int{400, 401, 403, 404, 409, 413, 429, 500}

// buildOpenAPI renders the route table as an OpenAPI 3 document.
func (s *Server) buildOpenAPI() ([]byte, error) {
	paths := obj{}
	errResp := obj{"description": "error", "content": obj{"application/json": obj{"schema": ref("Error")}}}
	for _, r := range s.routes {
		p, params := openapiPath(r.path)
		item, _ := paths[p].(obj)
		if item == nil {
			item = obj{}
			paths[p] = item
		}
		method := strings.ToLower(r.method)
		if _, dup := item[method]; dup {
			return nil, fmt.Errorf("duplicate route %s %s", r.method, r.path)
		}
		op := obj{"operationId": r.id, "summary": r.summary}
		var ps []obj
		for _, name := range params {
			ps = append(ps, obj{"name": name, "in": "path", "required": true,
				"schema": obj{"type": "string"}, "description": "percent-encode '/' and other reserved characters"})
		}
		for _, q := range r.query {
			d, ok := queryDocs[q]
			if !ok {
				return nil, fmt.Errorf("undocumented query parameter %q", q)
			}
			if q == "max_limit" {
				q = "limit" // the limit of a list without pages: bounded, not clamped
			}
			ps = append(ps, obj{"name": q, "in": "query", "required": false, "schema": d})
		}
		if r.stream {
			ps = append(ps, obj{"name": HeaderLastEventID, "in": "header", "required": false,
				"schema": obj{"type": "string"}, "description": "resume after this global position"})
		}
		if len(ps) > 0 {
			op["parameters"] = ps
		}
		if r.body != "" {
			op["requestBody"] = obj{"required": !r.optBody, "content": obj{"application/json": obj{"schema": ref(r.body)}}}
		}
		ok := obj{"description": nethttp.StatusText(r.status)}
		switch {
		case r.stream:
			ok["content"] = obj{"text/event-stream": obj{"schema": obj{"type": "string",
				"description": "SSE frames: id = global position, event = type, data = Event JSON"}}}
		case r.resp == "Text":
			ok["content"] = obj{"text/plain": obj{"schema": ref("Text")}}
		case r.resp != "":
			ok["content"] = obj{"application/json": obj{"schema": ref(r.resp)}}
		}
		responses := obj{strconv.Itoa(r.status): ok}
		if r.id == "newTopic" {
			responses["200"] = obj{"description": "rotated", "content": obj{"application/json": obj{"schema": ref(r.resp)}}}
		}
		if r.id == "findings" {
			responses["501"] = obj{"description": "this server's backend keeps no findings (findings_unavailable)",
				"content": obj{"application/json": obj{"schema": ref("Error")}}}
		}
		if strings.HasPrefix(r.path, apiPrefix+"/rules") {
			responses["501"] = obj{"description": "this server runs no automation engine (rules_unavailable)",
				"content": obj{"application/json": obj{"schema": ref("Error")}}}
		}
		if r.role == "" {
			op["security"] = []obj{}
			if r.id == "readyz" {
				responses["503"] = errResp
			}
		} else {
			op["x-required-role"] = string(r.role)
			for _, st := range errorStatuses {
				responses[strconv.Itoa(st)] = errResp
			}
		}
		op["responses"] = responses
		item[method] = op
	}
	doc := obj{
		"openapi": "3.0.3",
		"info": obj{
			"title":       "E4 C2 API",
			"version":     "1.0.0",
			"description": "Key management for E4. Bearer tokens with roles admin, operator and reader. No response carries key material except token creation (the secret, once) and the admin key export.",
		},
		"servers":  []obj{{"url": "/"}},
		"security": []obj{{"bearer": []string{}}},
		"paths":    paths,
		"components": obj{
			"securitySchemes": obj{"bearer": obj{"type": "http", "scheme": "bearer"}},
			"schemas":         schemas(),
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}
