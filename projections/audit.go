package projections

import (
	"sync"
	"time"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/eventcodec"
)

// AuditEntry is one line of the audit trail: who did what, when, to which
// client or topic, with which key version. It never holds a secret: only
// ids, names, versions and command names are copied from the events.
type AuditEntry struct {
	Position      uint64
	Time          time.Time
	Actor         string
	Type          string // wire name of the event
	EventID       string
	CorrelationID string
	CausationID   string
	Stream        string
	Client        domain.ID // zero when the event names no client
	Topic         domain.ID // zero when the event names no topic
	TopicName     string
	// KeyVersion is the key version the event introduces (registrations,
	// rotations) or, for queued commands, the topic key version carried.
	KeyVersion uint64
	Command    string      // command name of command.queued/delivered/failed
	Recipients []domain.ID // command.queued: who gets it
	Detail     string      // role, failure reason, token name...
}

// AuditQuery filters the audit trail. Zero fields do not filter.
type AuditQuery struct {
	Client *domain.ID // entries naming the client (as subject or recipient)
	Topic  *domain.ID
	Actor  string
	Type   string    // wire name
	Since  time.Time // inclusive
	Until  time.Time // exclusive
	After  uint64    // cursor: only entries with Position > After
	Limit  int       // default 100
}

// Audit is the audit-trail read model. It keeps at most Max entries in
// memory (0: unlimited); older ones stay in the log and a Rebuild of an
// Audit with a wider limit brings them back.
type Audit struct {
	mu      sync.RWMutex
	pos     uint64
	max     int
	entries []AuditEntry
	names   map[domain.ID]string // topic names, for display
}

// NewAudit returns an empty audit trail keeping at most max entries.
func NewAudit(max int) *Audit {
	return &Audit{max: max, names: make(map[domain.ID]string)}
}

// Name implements Projection.
func (a *Audit) Name() string { return "audit" }

// Position implements Projection.
func (a *Audit) Position() uint64 {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.pos
}

// Apply implements Projection.
func (a *Audit) Apply(r eventstore.Record) error {
	e := AuditEntry{Position: r.Position, Time: r.Meta.Time, Actor: r.Meta.Actor, Type: r.Type,
		EventID: r.ID, CorrelationID: r.Meta.CorrelationID, CausationID: r.Meta.CausationID, Stream: r.Stream}
	t := domain.TypeOf(r.Type)
	var ev domain.Event
	if t != domain.TypeUnknown {
		var err error
		if ev, err = eventcodec.DecodeType(t, r.Data); err != nil {
			return err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch x := ev.(type) {
	case *domain.ClientRegistered:
		e.Client, e.KeyVersion, e.Detail = x.Client, r.Version, x.Name+" role="+x.Role.String()
	case *domain.ClientRemoved:
		e.Client = x.Client
	case *domain.ClientKeyRotated:
		e.Client, e.KeyVersion = x.Client, r.Version
	case *domain.ClientTopicsReset:
		e.Client = x.Client
	case *domain.TopicCreated:
		a.names[x.Topic] = x.Name
		e.Topic, e.KeyVersion = x.Topic, r.Version
	case *domain.TopicKeyRotated:
		e.Topic, e.KeyVersion = x.Topic, r.Version
	case *domain.TopicRemoved:
		e.Topic = x.Topic
	case *domain.TopicClientLinked:
		e.Topic, e.Client = x.Topic, x.Client
	case *domain.TopicClientUnlinked:
		e.Topic, e.Client = x.Topic, x.Client
	case *domain.C2KeyGenerated:
		e.KeyVersion = r.Version
	case *domain.CommandQueued:
		e.Command, e.Topic, e.KeyVersion = x.Code.String(), x.Topic, x.TopicKeyVersion
		if !x.Subject.IsZero() {
			e.Client = x.Subject
		}
		e.Recipients = make([]domain.ID, len(x.Recipients))
		for i, rc := range x.Recipients {
			e.Recipients[i] = rc.Client
		}
	case *domain.CommandDelivered:
		e.Client, e.Detail = x.Client, x.Ref.String()
	case *domain.CommandFailed:
		e.Client, e.Detail = x.Client, x.Ref.String()+": "+x.Reason
	case *domain.CommandConfirmed:
		// The ref alone, like command.delivered (callers parse it).
		e.Client, e.Detail = x.Client, x.Ref.String()
	case *domain.DeviceSeen:
		e.Client, e.Detail = x.Client, "first seen online"
		if x.SessionPresent {
			e.Detail += " (session present)"
		}
	case *domain.DeviceReleased:
		e.Client, e.Detail = x.Client, "commands released before the device was seen"
	case *domain.TokenCreated:
		e.Detail = x.Name + " role=" + x.Role.String()
	case *domain.TokenRevoked:
		e.Detail = x.Name
	case *domain.KeyExported:
		e.Client, e.Topic, e.KeyVersion = x.Client, x.Topic, x.KeyVersion
		e.Detail = "key exported in clear"
	case *domain.KeyUsed:
		e.Topic, e.KeyVersion = x.Topic, x.KeyVersion
		e.Detail = keyUseDetail(x)
	case *domain.MonitorFinding:
		e.Topic, e.Client, e.KeyVersion = x.Topic, x.Client, x.KeyVersion
		e.Detail = findingDetail(x)
	}
	if !e.Topic.IsZero() {
		e.TopicName = a.names[e.Topic]
	}
	a.entries = append(a.entries, e)
	if a.max > 0 && len(a.entries) > a.max {
		// Drop the oldest tenth at once so trimming stays amortized O(1),
		// in place: a new slice each time made the start-up replay of the
		// audit window reallocate (and fault in) the whole window every
		// few thousand records. The dropped tail is cleared so the strings
		// it held are freed.
		drop := len(a.entries) - a.max + a.max/10
		n := copy(a.entries, a.entries[drop:])
		clear(a.entries[n:])
		a.entries = a.entries[:n]
	}
	a.pos = r.Position
	return nil
}

func (q *AuditQuery) match(e *AuditEntry) bool {
	if q.Actor != "" && e.Actor != q.Actor || q.Type != "" && e.Type != q.Type {
		return false
	}
	if !q.Since.IsZero() && e.Time.Before(q.Since) || !q.Until.IsZero() && !e.Time.Before(q.Until) {
		return false
	}
	if q.Topic != nil && e.Topic != *q.Topic {
		return false
	}
	if q.Client != nil && e.Client != *q.Client {
		found := false
		for _, r := range e.Recipients {
			if r == *q.Client {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Query returns the matching entries in log order after q.After and the
// cursor for the next page (0 when there are no more).
func (a *Audit) Query(q AuditQuery) ([]AuditEntry, uint64) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	// Entries are sorted by position: binary search the cursor.
	lo, hi := 0, len(a.entries)
	for lo < hi {
		m := (lo + hi) / 2
		if a.entries[m].Position <= q.After {
			lo = m + 1
		} else {
			hi = m
		}
	}
	var out []AuditEntry
	for i := lo; i < len(a.entries); i++ {
		e := &a.entries[i]
		if !q.match(e) {
			continue
		}
		if len(out) == q.Limit {
			return out, out[len(out)-1].Position
		}
		out = append(out, *e)
	}
	return out, 0
}

// Len returns the number of entries held.
func (a *Audit) Len() int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.entries)
}
