package http

import (
	"context"
	"fmt"
	nethttp "net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/monitor"
	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/transport/http/apitypes"
)

// FindingsBackend is implemented by a Backend that can list the traffic
// monitor's findings (ServiceBackend does). GET /findings answers 501
// "findings_unavailable" with a Backend without it.
type FindingsBackend interface {
	// Findings returns the findings in the log matching q, newest first.
	Findings(ctx context.Context, q FindingQuery) ([]apitypes.Finding, error)
}

// FindingQuery selects findings; zero fields do not filter. Limit is
// already defaulted and bounded by this package.
type FindingQuery struct {
	Topic  string // topic name
	Client string // publisher name or hex id
	Kind   string // finding kind (monitor.Kinds)
	Since  time.Time
	Limit  int
}

// MonitorStats is this instance's traffic monitor (*monitor.Monitor).
type MonitorStats interface {
	Stats() monitor.Stats
}

var errFindingsUnavailable = &apiError{status: nethttp.StatusNotImplemented, code: "findings_unavailable",
	msg: "this server's backend keeps no findings"}

// findingsQuery reads and checks the query parameters of GET /findings.
func (s *Server) findingsQuery(c echo.Context) (FindingQuery, error) {
	q := FindingQuery{Topic: c.QueryParam("topic"), Client: c.QueryParam("client"), Kind: c.QueryParam("kind"),
		Limit: s.cfg.DefaultPageSize}
	if q.Topic != "" {
		if err := core.ValidateTopic(q.Topic); err != nil {
			return q, fmt.Errorf("http: topic: %w", err)
		}
	}
	if q.Client != "" {
		if err := core.ValidateName(q.Client); err != nil {
			return q, fmt.Errorf("http: client: %w", err)
		}
	}
	if q.Kind != "" && !slices.Contains(monitor.Kinds(), q.Kind) {
		return q, badRequest("invalid_kind", "kind must be one of %v", monitor.Kinds())
	}
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > s.cfg.MaxPageSize {
			return q, badRequest("invalid_limit", "limit must be an integer from 1 to %d", s.cfg.MaxPageSize)
		}
		q.Limit = n
	}
	var err error
	q.Since, err = parseTimeParam(c, "since")
	return q, err
}

func (s *Server) findings(c echo.Context) error {
	q, err := s.findingsQuery(c)
	if err != nil {
		return err
	}
	fb, ok := s.backend.(FindingsBackend)
	if !ok {
		return errFindingsUnavailable
	}
	items, err := fb.Findings(c.Request().Context(), q)
	if err != nil {
		return err
	}
	if items == nil {
		items = []apitypes.Finding{}
	}
	return c.JSON(nethttp.StatusOK, apitypes.FindingList{Items: items, MonitorEnabled: s.cfg.Monitor != nil})
}

func (s *Server) monitorStatus(c echo.Context) error {
	if s.cfg.Monitor == nil {
		return c.JSON(nethttp.StatusOK, apitypes.MonitorStatus{})
	}
	return c.JSON(nethttp.StatusOK, s.monitorView(c.Request().Context(), s.cfg.Monitor.Stats()))
}

// monitorView converts the monitor's counters; publishers are named when
// the backend knows them.
func (s *Server) monitorView(ctx context.Context, st monitor.Stats) apitypes.MonitorStatus {
	out := apitypes.MonitorStatus{Enabled: true,
		Queue: &apitypes.MonitorQueue{Size: st.QueueCap, Used: st.QueueLen},
		Counts: &apitypes.MonitorCounts{Offered: st.Offered, Classified: st.Classified, Dropped: st.Dropped,
			Sampling: st.Dropped > 0, Unmanaged: st.Unmanaged, Findings: st.Recorded, RecordErrors: st.RecordErrors},
		Topics: []apitypes.MonitorTopic{}, Clients: []apitypes.MonitorClient{}}
	for _, t := range st.Topics {
		mt := apitypes.MonitorTopic{Topic: t.Topic, Messages: t.Messages, Bytes: t.Bytes, Rate: t.Rate,
			Baseline: t.Baseline, Spikes: t.Spikes, Drops: t.Drops,
			Classes: map[string]uint64(t.Classes), Shares: map[string]float64{}}
		if mt.Classes == nil {
			mt.Classes = map[string]uint64{}
		}
		for class, n := range t.Classes {
			if t.Messages > 0 {
				mt.Shares[class] = float64(n) / float64(t.Messages)
			}
		}
		out.Topics = append(out.Topics, mt)
	}
	for _, cl := range st.Clients {
		mc := apitypes.MonitorClient{Messages: cl.Messages, Bytes: cl.Bytes, Classes: map[string]uint64(cl.Classes)}
		if mc.Classes == nil {
			mc.Classes = map[string]uint64{}
		}
		if !cl.Client.IsZero() {
			mc.ClientID = cl.Client.String()
			mc.Client = s.clientName(ctx, cl.Client)
		}
		out.Clients = append(out.Clients, mc)
	}
	return out
}

// clientNamer is implemented by a Backend that names a client by id
// without computing its sync view (ServiceBackend).
type clientNamer interface {
	ClientName(id domain.ID) (string, bool)
}

// clientName is the name of a registered client, "" if unknown.
func (s *Server) clientName(ctx context.Context, id domain.ID) string {
	if n, ok := s.backend.(clientNamer); ok {
		name, _ := n.ClientName(id)
		return name
	}
	if ci, err := s.backend.Client(ctx, id.String()); err == nil {
		return ci.Name
	}
	return ""
}

// ClientName returns the name of the registered client id.
func (b *ServiceBackend) ClientName(id domain.ID) (string, bool) {
	ci, err := b.svc.Client(c2.ByID(id))
	if err != nil {
		return "", false
	}
	return ci.Name, true
}

// Findings implements FindingsBackend.
func (b *ServiceBackend) Findings(ctx context.Context, q FindingQuery) ([]apitypes.Finding, error) {
	cq := c2.FindingQuery{Topic: q.Topic, Kind: q.Kind, Since: q.Since, Limit: q.Limit}
	if q.Client != "" {
		id, err := b.refID(q.Client)
		if err != nil {
			return nil, err
		}
		cq.Client = &id
	}
	fs, err := b.svc.Findings(ctx, cq)
	if err != nil {
		return nil, fmt.Errorf("http: findings: %w", err)
	}
	out := make([]apitypes.Finding, len(fs))
	for i, f := range fs {
		out[i] = b.findingView(f)
	}
	return out, nil
}

func (b *ServiceBackend) findingView(f c2.Finding) apitypes.Finding {
	out := apitypes.Finding{Position: f.Position, Time: f.Time, Kind: f.Kind, Topic: f.TopicName,
		KeyVersion: f.KeyVersion, Count: f.Count, Reason: f.Detail,
		WindowStart: time.Unix(int64(f.WindowStart), 0).UTC(), WindowEnd: time.Unix(int64(f.WindowEnd), 0).UTC()}
	if !f.MonitorFinding.Topic.IsZero() {
		out.TopicHash = f.MonitorFinding.Topic.String()
	}
	if !f.MonitorFinding.Client.IsZero() {
		out.ClientID = f.MonitorFinding.Client.String()
		out.Client, _ = b.ClientName(f.MonitorFinding.Client)
	}
	return out
}

var _ FindingsBackend = (*ServiceBackend)(nil)

// monitorSchemas are the component schemas of the monitor routes.
func monitorSchemas() obj {
	tm := obj{"type": "string", "format": "date-time"}
	u64 := obj{"type": "integer", "format": "int64", "minimum": 0}
	integer := obj{"type": "integer", "minimum": 0}
	counts := obj{"type": "object", "additionalProperties": u64, "description": "messages by class (current, previous, old_key, forged, plaintext, ...)"}
	return obj{
		"Finding": object([]string{"position", "time", "kind", "window_start", "window_end", "count"}, obj{
			"position": u64, "time": tm,
			"kind":         obj{"type": "string", "enum": monitor.Kinds(), "description": "finding kind (docs/monitoring.md)"},
			"topic":        str("topic name, when known"),
			"topic_hash":   str("topic hash, hex"),
			"client":       str("publisher name, when known"),
			"client_id":    str("publisher id, hex, when known (embedded broker, PK signature)"),
			"key_version":  obj{"type": "integer", "format": "int64", "minimum": 0, "description": "key version that authenticated the messages (old_key: the stale one)"},
			"window_start": tm, "window_end": tm,
			"count":  obj{"type": "integer", "format": "int64", "minimum": 0, "description": "messages in the window"},
			"reason": str("short reason; never a payload or a key"),
		}),
		"FindingList": object([]string{"items", "monitor_enabled"}, obj{
			"items":           obj{"type": "array", "items": ref("Finding")},
			"monitor_enabled": obj{"type": "boolean", "description": "this instance's monitor runs (the findings may come from another instance)"},
		}),
		"MonitorStatus": object([]string{"enabled"}, obj{
			"enabled": obj{"type": "boolean", "description": "this instance's monitor runs; when false, no other field"},
			"queue": object([]string{"size", "used"}, obj{
				"size": integer, "used": integer,
			}),
			"counts": object([]string{"offered", "classified", "dropped", "sampling", "unmanaged", "findings_recorded", "record_errors"}, obj{
				"offered": u64, "classified": u64,
				"dropped":           obj{"type": "integer", "format": "int64", "minimum": 0, "description": "messages that found the queue full (not classified: the monitor watched a sample)"},
				"sampling":          obj{"type": "boolean", "description": "dropped > 0"},
				"unmanaged":         obj{"type": "integer", "format": "int64", "minimum": 0, "description": "messages on topics the C2 does not manage"},
				"findings_recorded": u64, "record_errors": u64,
			}),
			"topics": obj{"type": "array", "items": object([]string{"topic", "messages", "bytes", "rate", "spikes", "drops", "classes", "shares"}, obj{
				"topic": str("topic name"), "messages": u64, "bytes": u64,
				"rate":     obj{"type": "number", "description": "messages per second in the last rate bucket"},
				"baseline": str("rate baseline per bucket, mean±band"),
				"spikes":   u64, "drops": u64,
				"classes": counts,
				"shares":  obj{"type": "object", "additionalProperties": obj{"type": "number"}, "description": "each class's fraction of the messages (0..1)"},
			})},
			"clients": obj{"type": "array", "items": object([]string{"client_id", "messages", "bytes", "classes"}, obj{
				"client_id": str("publisher id, hex (empty: the publishers past the monitor's limit)"),
				"client":    str("publisher name, when known"),
				"messages":  u64, "bytes": u64, "classes": counts,
			})},
		}),
	}
}
