package console

import (
	"context"
	"errors"
	"fmt"
	nethttp "net/http"
	"net/url"
	"strings"

	httpapi "github.com/e4c2/e4c2/transport/http"
)

type topicsData struct {
	Topics       []httpapi.Topic
	Total        int
	Cursor, Next string
}

// topics lists the topics, a page at a time.
func (c *Console) topics(q *req) error {
	ctx := q.r.Context()
	d := topicsData{Cursor: q.query("cursor")}
	var err error
	if d.Total, err = c.api.CountTopics(ctx); err != nil {
		return err
	}
	pg, err := c.api.Topics(ctx, httpapi.PageRequest{Cursor: d.Cursor, Limit: pageSize})
	if err != nil {
		return err
	}
	d.Topics, d.Next = pg.Items, pg.Next
	return c.render(q, "topics", "Topics", d)
}

// member is one client of a topic with its sync state for that topic.
type member struct {
	Client    httpapi.Client
	Ref       string
	Status    string
	Desired   uint64
	Accepted  uint64
	Confirmed uint64
}

type topicData struct {
	Topic        httpapi.Topic
	Members      []member
	Cursor, Next string
	Audit        []httpapi.AuditEntry
}

// topic is one topic's page: members with their sync state, rotate,
// attach many, remove.
func (c *Console) topic(q *req) error {
	ctx := q.r.Context()
	t, err := c.api.Topic(ctx, q.query("t"))
	if err != nil {
		return err
	}
	d := topicData{Topic: t, Cursor: q.query("cursor")}
	pg, err := c.api.TopicClients(ctx, t.Name, httpapi.PageRequest{Cursor: d.Cursor, Limit: pageSize})
	if err != nil {
		return err
	}
	d.Next = pg.Next
	for _, cl := range pg.Items {
		d.Members = append(d.Members, c.memberOf(ctx, cl, t.Name))
	}
	if d.Audit, err = c.auditTail(ctx, httpapi.AuditQuery{Topic: t.Name}, pageSize); err != nil {
		return err
	}
	return c.render(q, "topic", "Topic "+t.Name, d)
}

func (c *Console) memberOf(ctx context.Context, cl httpapi.Client, topic string) member {
	m := member{Client: cl, Ref: clientRef(cl), Status: "unknown"}
	full, err := c.api.Client(ctx, m.Ref)
	if err != nil || full.Sync == nil {
		return m
	}
	m.Status = full.Sync.Status
	for _, ts := range full.Sync.Topics {
		if ts.Topic == topic {
			m.Desired, m.Accepted, m.Confirmed = ts.Desired, ts.Accepted, ts.Confirmed
		}
	}
	return m
}

// newTopic creates a topic with a random key.
func (c *Console) newTopic(q *req) error {
	name := q.form("name")
	if _, err := c.api.NewTopic(q.r.Context(), q.caller(), name); err != nil {
		return q.failed(Prefix+"topics", err)
	}
	return q.done(Prefix+"topic?t="+url.QueryEscape(name), "topic "+name+" created")
}

// topicAction rotates or removes a topic, or attaches many clients to it.
func (c *Console) topicAction(q *req) error {
	ctx := q.r.Context()
	action := strings.TrimPrefix(q.r.URL.Path, Prefix)
	topic := q.form("topic")
	back := Prefix + "topic?t=" + url.QueryEscape(topic)
	if q.needsConfirm(action, url.Values{"topic": {topic}}) {
		return nil
	}
	by := q.caller()
	switch action {
	case "topic/rotate":
		if err := c.api.RotateTopic(ctx, by, topic); err != nil {
			return q.failed(back, err)
		}
		return q.done(back, "topic "+topic+" rotated: SetTopicKey queued to its clients")
	case "topic/remove":
		if err := c.api.RemoveTopic(ctx, by, topic); err != nil {
			return q.failed(back, err)
		}
		return q.done(Prefix+"topics", "topic "+topic+" removed")
	case "topic/attach":
		clients := strings.Fields(strings.ReplaceAll(q.r.PostFormValue("clients"), ",", " "))
		if len(clients) == 0 {
			return q.failed(back, errors.New("name at least one client"))
		}
		if err := c.attachMany(ctx, by, topic, clients); err != nil {
			return q.failed(back, err)
		}
		return q.done(back, fmt.Sprintf("%s attached to %s", plural(len(clients), "client"), topic))
	}
	return &statusError{nethttp.StatusNotFound, "no such action"}
}

// attachMany links clients to a topic in one decision when the backend
// can, else one by one.
func (c *Console) attachMany(ctx context.Context, by httpapi.Caller, topic string, clients []string) error {
	if ba, ok := c.api.(httpapi.BatchAttacher); ok {
		return ba.AttachClients(ctx, by, topic, clients)
	}
	for _, cl := range clients {
		if err := c.api.AttachClient(ctx, by, cl, topic); err != nil {
			return fmt.Errorf("%s: %w", cl, err)
		}
	}
	return nil
}
