package http

import (
	nethttp "net/http"

	"github.com/labstack/echo/v4"
)

// route is one entry of the route table. The same table registers the
// echo routes, sets the role each one needs and generates the OpenAPI
// document, so the three cannot drift apart.
type route struct {
	method  string
	path    string // echo syntax, ":name" parameters
	role    Role   // minimal role; "" = no token needed
	id      string // OpenAPI operationId
	summary string
	body    string   // request body schema ("" = none)
	optBody bool     // the body may be omitted
	resp    string   // success response schema ("" = no content)
	status  int      // success status
	query   []string // documented query parameters
	stream  bool     // text/event-stream response
	handler echo.HandlerFunc
}

const apiPrefix = "/api/v1"

// routeTable lists every route of the API.
func (s *Server) routeTable() []route {
	const (
		get, post, put, del = nethttp.MethodGet, nethttp.MethodPost, nethttp.MethodPut, nethttp.MethodDelete
		ok, created, none   = nethttp.StatusOK, nethttp.StatusCreated, nethttp.StatusNoContent
	)
	page := []string{"cursor", "limit"}
	p := func(path string) string { return apiPrefix + path }
	rs := []route{
		{method: get, path: "/healthz", id: "healthz", summary: "Liveness probe", resp: "Status", status: ok, handler: s.healthz},
		{method: get, path: "/readyz", id: "readyz", summary: "Readiness probe (store and broker)", resp: "Status", status: ok, handler: s.readyz},
		{method: get, path: "/openapi.json", role: RoleReader, id: "openapi", summary: "This OpenAPI document", resp: "Object", status: ok, handler: s.openapiDoc},

		// Clients.
		{method: post, path: p("/clients"), role: RoleOperator, id: "newClient", summary: "new_client: create a client from a name or id and a key (SK) or public key (PK); an existing client is refused (409 client_exists) unless replace=true, which keeps its role and rotates its key (SK: SetIdKey under the key the device holds)", body: "NewClient", resp: "Client", status: created, handler: s.newClient},
		{method: get, path: p("/clients"), role: RoleReader, id: "listClients", summary: "List clients", resp: "ClientPage", status: ok, query: page, handler: s.listClients},
		{method: get, path: p("/count/clients"), role: RoleReader, id: "countClients", summary: "Count clients", resp: "Count", status: ok, handler: s.countClients},
		{method: get, path: p("/clients/:client"), role: RoleReader, id: "getClient", summary: "Get a client by name or hex id", resp: "Client", status: ok, handler: s.getClient},
		{method: del, path: p("/clients/:client"), role: RoleOperator, id: "removeClient", summary: "remove_client (reset_topics=true first sends ResetTopics)", status: none, query: []string{"reset_topics"}, handler: s.removeClient},
		{method: post, path: p("/clients/:client/key"), role: RoleOperator, id: "newClientKey", summary: "new_client_key [SK]: rotate the client's key (SetIdKey protected with the old key)", status: none, handler: s.newClientKey},
		{method: post, path: p("/clients/:client/resync"), role: RoleOperator, id: "resyncClient", summary: "Queue what the device lacks (SK SetIdKey under the key it holds; PK SetC2Key, then SetPubKey / RemovePubKey of the peer keys it should and should not hold; then SetTopicKey of each topic key it does not hold); full=true resends every current key", resp: "ResyncResult", status: ok, query: []string{"full"}, handler: s.resyncClient},
		{method: post, path: p("/clients/:client/release"), role: RoleOperator, id: "releaseClient", summary: "External broker: let the commands of a device never seen go to the broker now instead of waiting for its first sighting (device.released; undone by a re-registration)", resp: "ReleaseResult", status: ok, handler: s.releaseClient},
		{method: post, path: p("/clients/:client/reset"), role: RoleOperator, id: "resetClient", summary: "reset_client: unlink from every topic (ResetTopics)", status: none, handler: s.resetClient},
		{method: get, path: p("/clients/:client/topics"), role: RoleReader, id: "clientTopics", summary: "Topics of a client", resp: "TopicPage", status: ok, query: page, handler: s.clientTopics},
		{method: put, path: p("/clients/:client/topics/:topic"), role: RoleOperator, id: "attach", summary: "new_topic_client: link client to topic (SetTopicKey)", status: none, handler: s.attach},
		{method: del, path: p("/clients/:client/topics/:topic"), role: RoleOperator, id: "detach", summary: "remove_topic_client: unlink (RemoveTopic)", status: none, handler: s.detach},
		{method: post, path: p("/clients/:client/pubkeys/reset"), role: RoleOperator, id: "resetClientPubKeys", summary: "reset_client_pubkeys [PK] (ResetPubKeys)", status: none, handler: s.resetPubKeys},
		{method: put, path: p("/clients/:client/pubkeys/:source"), role: RoleOperator, id: "sendClientPubKey", summary: "send_client_pubkey [PK]: send source's public key to client (SetPubKey)", status: none, handler: s.sendPubKey},
		{method: del, path: p("/clients/:client/pubkeys/:source"), role: RoleOperator, id: "removeClientPubKey", summary: "remove_client_pubkey [PK] (RemovePubKey)", status: none, handler: s.removePubKey},

		// Topics.
		{method: post, path: p("/topics"), role: RoleOperator, id: "newTopic", summary: "new_topic: create a topic with a random key; an existing topic is refused (409 topic_exists, rotate it with rotateTopic)", body: "NewTopic", resp: "TopicResult", status: created, handler: s.newTopic},
		{method: post, path: p("/topics/:topic/rotate"), role: RoleOperator, id: "rotateTopic", summary: "new_topic on an existing topic: new random key, SetTopicKey to every linked client (consumers first)", resp: "TopicResult", status: ok, handler: s.rotateTopic},
		{method: get, path: p("/topics"), role: RoleReader, id: "listTopics", summary: "List topics", resp: "TopicPage", status: ok, query: page, handler: s.listTopics},
		{method: get, path: p("/count/topics"), role: RoleReader, id: "countTopics", summary: "Count topics", resp: "Count", status: ok, handler: s.countTopics},
		{method: get, path: p("/topics/:topic"), role: RoleReader, id: "getTopic", summary: "Get a topic (URL-encode '/' as %2F)", resp: "Topic", status: ok, handler: s.getTopic},
		{method: del, path: p("/topics/:topic"), role: RoleOperator, id: "removeTopic", summary: "remove_topic (RemoveTopic to every linked client)", status: none, handler: s.removeTopic},
		{method: get, path: p("/topics/:topic/clients"), role: RoleReader, id: "topicClients", summary: "Clients of a topic", resp: "ClientPage", status: ok, query: page, handler: s.topicClients},
		{method: post, path: p("/topics/:topic/protect"), role: RoleOperator, id: "protect", summary: "Protect a payload with the topic key", body: "ProtectRequest", resp: "ProtectResponse", status: ok, handler: s.cryptoHelper(s.protect)},
		{method: post, path: p("/topics/:topic/unprotect"), role: RoleOperator, id: "unprotect", summary: "Unprotect a message with the topic key", body: "UnprotectRequest", resp: "UnprotectResponse", status: ok, handler: s.cryptoHelper(s.unprotect)},

		// C2 key, batches, audit, events, deliveries.
		{method: get, path: p("/c2key"), role: RoleReader, id: "getC2Key", summary: "The C2 public key [PK] (public: what devices need to check commands)", resp: "C2Key", status: ok, handler: s.getC2Key},
		{method: post, path: p("/c2key"), role: RoleOperator, id: "newC2Key", summary: "new_c2_key [PK]: new C2 key pair (SetC2Key to every client)", status: none, handler: s.newC2Key},
		{method: post, path: p("/batch/attach"), role: RoleOperator, id: "batchAttach", summary: "Link many clients to a topic; per-item results", body: "BatchAttach", resp: "BatchResult", status: ok, handler: s.batchAttach},
		{method: post, path: p("/batch/reset"), role: RoleOperator, id: "batchReset", summary: "Reset many clients; per-item results", body: "BatchReset", resp: "BatchResult", status: ok, handler: s.batchReset},
		{method: get, path: p("/audit"), role: RoleReader, id: "audit", summary: "Audit trail, filtered by client, topic, actor and time (RFC 3339)", resp: "AuditPage", status: ok, query: []string{"client", "topic", "actor", "type", "from", "to", "cursor", "limit"}, handler: s.audit},
		{method: get, path: p("/events"), role: RoleReader, id: "events", summary: "Event stream (SSE); id = global position; resume with Last-Event-ID", status: ok, query: []string{"from"}, stream: true, handler: s.events},
		{method: get, path: p("/findings"), role: RoleReader, id: "findings", summary: "The traffic monitor's findings in the log, newest first (monitor.finding.v1), filtered by topic, publisher, kind and time; also when this instance's monitor is off (monitor_enabled)", resp: "FindingList", status: ok, query: []string{"topic", "client", "kind", "since", "max_limit"}, handler: s.findings},
		{method: get, path: p("/monitor"), role: RoleReader, id: "monitorStatus", summary: "This instance's traffic monitor: queue, counters, per-topic rates and class shares, per-publisher counts; {enabled: false} when off", resp: "MonitorStatus", status: ok, handler: s.monitorStatus},
		{method: get, path: p("/fleet"), role: RoleReader, id: "fleet", summary: "Clients by sync status (in_sync, lagging, never_seen) and queued commands", resp: "Fleet", status: ok, handler: s.fleet},
		{method: post, path: p("/release"), role: RoleOperator, id: "releaseAll", summary: "Release every device neither seen nor released (see releaseClient)", resp: "ReleaseResult", status: ok, handler: s.releaseAll},
		{method: post, path: p("/resync"), role: RoleOperator, id: "resyncAll", summary: "Resync every client (see resyncClient)", resp: "ResyncResult", status: ok, query: []string{"full"}, handler: s.resyncAll},
		{method: get, path: p("/deliveries"), role: RoleReader, id: "pendingDeliveries", summary: "Commands queued and not yet settled (accepted by a broker, confirmed by the device's session, or failed)", resp: "DeliveryPage", status: ok, query: []string{"client", "cursor", "limit"}, handler: s.deliveries},

		// Tokens and key export (admin).
		{method: post, path: p("/tokens"), role: RoleAdmin, id: "createToken", summary: "Create an API token; the secret is returned once", body: "NewToken", resp: "CreatedToken", status: created, handler: s.createToken},
		{method: get, path: p("/tokens"), role: RoleAdmin, id: "listTokens", summary: "List API tokens (no secrets)", resp: "TokenList", status: ok, handler: s.listTokens},
		{method: del, path: p("/tokens/:name"), role: RoleAdmin, id: "revokeToken", summary: "Revoke an API token", status: none, handler: s.revokeToken},
		{method: post, path: p("/export/clients/:client"), role: RoleAdmin, id: "exportClientKey", summary: "Export a client's key (the only key-bearing response)", resp: "ExportedKey", status: ok, handler: s.exportClientKey},
		{method: post, path: p("/export/topics/:topic"), role: RoleAdmin, id: "exportTopicKey", summary: "Export a topic's key (the only key-bearing response)", resp: "ExportedKey", status: ok, handler: s.exportTopicKey},
	}
	rs = append(rs, s.ruleRoutes()...)
	if s.cfg.Metrics != nil {
		role := Role("")
		if s.cfg.MetricsAuth {
			role = RoleReader
		}
		rs = append(rs, route{method: get, path: "/metrics", role: role, id: "metrics", summary: "Prometheus metrics", resp: "Text", status: ok, handler: s.metrics})
	}
	return rs
}
