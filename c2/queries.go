package c2

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strconv"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/projections"
)

// ErrInvalidCursor: a page cursor this service did not produce.
var ErrInvalidCursor = fmt.Errorf("c2: invalid cursor")

// Page cursors are opaque strings; "" is the first page and an empty next
// cursor means there is no further page.
func parseCursor(c string) (int, error) {
	if c == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(c)
	if err != nil || n < 0 {
		return 0, ErrInvalidCursor
	}
	return n, nil
}

func fmtCursor(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func clampLimit(limit int) int {
	switch {
	case limit <= 0:
		return 100
	case limit > 10000:
		return 10000
	}
	return limit
}

// Client returns a registered client.
func (s *Service) Client(c ClientRef) (projections.ClientInfo, error) {
	id, err := c.Resolve()
	if err != nil {
		return projections.ClientInfo{}, resolveErr("get_client", c, err)
	}
	ci, ok := s.ks.Client(id)
	if !ok {
		return ci, resolveErr("get_client", c, domain.ErrUnknownClient)
	}
	return ci, nil
}

// Clients returns a page of clients in registration order.
func (s *Service) Clients(cursor string, limit int) ([]projections.ClientInfo, string, error) {
	n, err := parseCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	out, next := s.ks.Clients(n, clampLimit(limit))
	return out, fmtCursor(next), nil
}

// CountClients returns the number of registered clients.
func (s *Service) CountClients() int { return s.ks.ClientCount() }

// Topic returns a topic by name.
func (s *Service) Topic(topic string) (projections.TopicInfo, error) {
	h, err := topicHash("get_topic", topic)
	if err != nil {
		return projections.TopicInfo{}, err
	}
	t, ok := s.ks.Topic(h)
	if !ok {
		return t, &domain.OpError{Op: "get_topic", Subject: topic, Err: domain.ErrUnknownTopic}
	}
	return t, nil
}

// Topics returns a page of topics in creation order.
func (s *Service) Topics(cursor string, limit int) ([]projections.TopicInfo, string, error) {
	n, err := parseCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	out, next := s.ks.Topics(n, clampLimit(limit))
	return out, fmtCursor(next), nil
}

// CountTopics returns the number of topics.
func (s *Service) CountTopics() int { return s.ks.TopicCount() }

// TopicClients returns a page of the clients linked to a topic.
func (s *Service) TopicClients(topic, cursor string, limit int) ([]projections.ClientInfo, string, error) {
	h, err := topicHash("topic_clients", topic)
	if err != nil {
		return nil, "", err
	}
	n, err := parseCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	out, next, ok := s.ks.TopicClients(h, n, clampLimit(limit))
	if !ok {
		return nil, "", &domain.OpError{Op: "topic_clients", Subject: topic, Err: domain.ErrUnknownTopic}
	}
	return out, fmtCursor(next), nil
}

// ClientTopics returns a page of the topics of a client.
func (s *Service) ClientTopics(c ClientRef, cursor string, limit int) ([]projections.TopicInfo, string, error) {
	id, err := c.Resolve()
	if err != nil {
		return nil, "", resolveErr("client_topics", c, err)
	}
	n, err := parseCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	out, next, ok := s.ks.ClientTopics(id, n, clampLimit(limit))
	if !ok {
		return nil, "", resolveErr("client_topics", c, domain.ErrUnknownClient)
	}
	return out, fmtCursor(next), nil
}

// C2 returns the C2 key pair state (PK mode): versions and public key.
func (s *Service) C2() projections.C2Info { return s.ks.C2() }

// Audit queries the audit trail; the second result is the cursor (the
// After of the next page, 0 when done).
func (s *Service) Audit(q projections.AuditQuery) ([]projections.AuditEntry, uint64) {
	return s.audit.Query(q)
}

// Pending returns up to limit queued commands of a client, oldest first.
func (s *Service) Pending(c ClientRef, limit int) ([]projections.Queued, error) {
	id, err := c.Resolve()
	if err != nil {
		return nil, resolveErr("pending", c, err)
	}
	return s.ks.Pending(id, limit), nil
}

// PendingFor returns up to limit (all if <= 0) queued commands of a client
// by id, oldest first.
func (s *Service) PendingFor(id domain.ID, limit int) []projections.Queued {
	return s.ks.Pending(id, limit)
}

// PendingClients returns the clients with queued commands, oldest head
// first.
func (s *Service) PendingClients() []domain.ID { return s.ks.PendingClients() }

// PendingCount returns the number of queued commands.
func (s *Service) PendingCount() int { return s.ks.PendingCount() }

// PendingAfter returns up to limit queued commands with Seq() > after in
// global order: the cursor view the MQTT worker's Source.Pending needs
// (Item.Seq = Queued.Seq(), Item.Ref = Queued.Ref.String()).
func (s *Service) PendingAfter(after uint64, limit int) []projections.Queued {
	return s.ks.PendingAfter(after, limit)
}

// QueuedBySeq returns a still pending command of a client by its Seq.
func (s *Service) QueuedBySeq(id domain.ID, seq uint64) (projections.Queued, bool) {
	return s.ks.QueuedBySeq(id, seq)
}

// Changed receives a value after commands were queued (capacity 1,
// never blocks the projections).
func (s *Service) Changed() <-chan struct{} { return s.ks.Changed() }

// Token returns a live token by name.
func (s *Service) Token(name string) (projections.TokenInfo, error) {
	t, ok := s.ks.Token(name)
	if !ok {
		return t, &domain.OpError{Op: "get_token", Subject: name, Err: domain.ErrUnknownToken}
	}
	return t, nil
}

// Tokens returns the live tokens.
func (s *Service) Tokens() []projections.TokenInfo { return s.ks.Tokens() }

// TokenByHash returns the live token whose secret hashes (SHA-256) to sum.
func (s *Service) TokenByHash(sum [32]byte) (projections.TokenInfo, error) {
	t, ok := s.ks.TokenByHash(sum)
	if !ok || subtle.ConstantTimeCompare(t.Hash[:], sum[:]) != 1 {
		return projections.TokenInfo{}, &domain.OpError{Op: "verify_token", Err: domain.ErrUnknownToken}
	}
	return t, nil
}

// VerifyToken returns the live token of a secret, or an error wrapping
// domain.ErrUnknownToken.
func (s *Service) VerifyToken(secret string) (projections.TokenInfo, error) {
	return s.TokenByHash(sha256.Sum256([]byte(secret)))
}

// waitStream waits until every read model applied stream up to version v:
// KeyState (applied first) tells when the record is in, and the runner's
// position when the other projections (the audit) have it too.
func (s *Service) waitStream(ctx context.Context, stream string, v uint64) error {
	if err := s.runner.Wait(ctx, func() bool { return s.ks.StreamVersion(stream) >= v }); err != nil {
		return err
	}
	return s.runner.WaitPosition(ctx, s.ks.Position())
}

// PendingPage returns a page of the queued commands of a client, oldest
// first; the cursor is the Seq of the last command returned.
func (s *Service) PendingPage(c ClientRef, cursor string, limit int) ([]projections.Queued, string, error) {
	id, err := c.Resolve()
	if err != nil {
		return nil, "", resolveErr("pending", c, err)
	}
	var after uint64
	if cursor != "" {
		if after, err = strconv.ParseUint(cursor, 10, 64); err != nil {
			return nil, "", ErrInvalidCursor
		}
	}
	limit = clampLimit(limit)
	var out []projections.Queued
	for _, q := range s.ks.Pending(id, 0) {
		if q.Seq() <= after {
			continue
		}
		if len(out) == limit {
			return out, strconv.FormatUint(out[len(out)-1].Seq(), 10), nil
		}
		out = append(out, q)
	}
	return out, "", nil
}
