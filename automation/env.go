package automation

import "time"

// Env is the typed environment every rule expression is compiled against
// and run with. Expressions see its fields by their expr tags:
//
//	event    the triggering domain event (zero for a schedule)
//	now      the engine clock at evaluation (UTC)
//	mode     "sk" or "pk"
//	clients  every registered client (read model, at the event's position)
//	topics   every topic
//
// clients and topics are only built for programs that name them, once per
// event, so conditions over the event alone stay cheap.
type Env struct {
	Event   Event     `expr:"event"`
	Now     time.Time `expr:"now"`
	Mode    string    `expr:"mode"`
	Clients []Client  `expr:"clients"`
	Topics  []Topic   `expr:"topics"`

	// guard is the time budget of the run in progress (see runGuarded);
	// unexported, so expressions cannot see it.
	guard evalGuard
}

// Event is a domain event as rule expressions see it. Fields that do not
// apply to an event type are empty.
type Event struct {
	// Type is the wire name, e.g. "topic.client_linked.v1".
	Type     string `expr:"type"`
	ID       string `expr:"id"`
	Stream   string `expr:"stream"`
	Position int    `expr:"position"`
	// Client is the client's name, or its hex id when it has none;
	// ClientID is always the hex id.
	Client   string `expr:"client"`
	ClientID string `expr:"client_id"`
	// Topic is the topic name; TopicHash its hex hash.
	Topic     string `expr:"topic"`
	TopicHash string `expr:"topic_hash"`
	// Role of a registered client ("consumer", "both", "publisher").
	Role string `expr:"role"`
	// Command is the command name of command.queued/delivered/failed
	// (e.g. "SetTopicKey"); Recipients the number of recipients queued.
	Command    string `expr:"command"`
	Recipients int    `expr:"recipients"`
	// Reason is the failure reason of command.failed.v1, or the detail
	// of a monitor.finding.v1.
	Reason string `expr:"reason"`
	// Kind is the finding kind of monitor.finding.v1 ("forged",
	// "old_key", "plaintext", "stale", "future", "replay",
	// "unknown_signer", "not_member", "consumer_publish", "rate_spike",
	// "rate_drop", "sampled"), Count the messages it counts in its window
	// and KeyVersion the topic key version they were authentic under
	// (old_key). Client is the publisher when the monitor knows it.
	Kind          string    `expr:"kind"`
	Count         int       `expr:"count"`
	KeyVersion    int       `expr:"key_version"`
	Actor         string    `expr:"actor"`
	CausationID   string    `expr:"causation"`
	CorrelationID string    `expr:"correlation"`
	Time          time.Time `expr:"time"`
	// Depth is the causation depth: 0 for an operator's event, n for an
	// event written by a fire of depth n.
	Depth int `expr:"depth"`
}

// Client is a registered client in the read model.
type Client struct {
	Name string `expr:"name"` // the hex id when registered without a name
	ID   string `expr:"id"`
	Role string `expr:"role"`
	// Topics is the number of topics the client is linked to.
	Topics     int       `expr:"topics"`
	Pending    int       `expr:"pending"`
	KeyVersion int       `expr:"key_version"`
	Created    time.Time `expr:"created"`
	Updated    time.Time `expr:"updated"` // last key change
}

// Topic is a topic in the read model.
type Topic struct {
	Name string `expr:"name"`
	Hash string `expr:"hash"`
	// Members is the number of linked clients; Clients their names.
	Members    int       `expr:"members"`
	Clients    []string  `expr:"clients"`
	KeyVersion int       `expr:"key_version"`
	Created    time.Time `expr:"created"`
	Rotated    time.Time `expr:"rotated"` // current key
}
