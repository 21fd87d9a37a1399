package console

import (
	"context"
	"time"

	httpapi "github.com/e4c2/e4c2/transport/http"
)

type overviewData struct {
	Clients, Topics int
	Fleet           httpapi.FleetSummary
	Queue           []httpapi.Delivery
	QueueMore       bool
	Failed          []httpapi.AuditEntry
	Recent          []httpapi.AuditEntry
	Fired           []httpapi.AuditEntry
	MonitorOn       bool
	Anomalies       []httpapi.AuditEntry
	Health          string // "ok" or the readiness error
	Position        uint64
}

// overview is the landing page: counts, fleet sync, delivery queue,
// failures, recent events, rule fires, anomalies and health.
func (c *Console) overview(q *req) error {
	ctx := q.r.Context()
	var d overviewData
	var err error
	if d.Clients, err = c.api.CountClients(ctx); err != nil {
		return err
	}
	if d.Topics, err = c.api.CountTopics(ctx); err != nil {
		return err
	}
	if d.Fleet, err = c.api.Fleet(ctx); err != nil {
		return err
	}
	queue, err := c.api.PendingDeliveries(ctx, "", httpapi.PageRequest{Limit: 10})
	if err != nil {
		return err
	}
	d.Queue, d.QueueMore = queue.Items, queue.Next != ""
	if d.Failed, err = c.auditTail(ctx, httpapi.AuditQuery{Type: "command.failed.v1"}, 10); err != nil {
		return err
	}
	if d.Recent, err = c.auditTail(ctx, httpapi.AuditQuery{}, 15); err != nil {
		return err
	}
	if d.Fired, err = c.auditTail(ctx, httpapi.AuditQuery{Type: "rule.fired.v1"}, 10); err != nil {
		return err
	}
	if c.cfg.Monitor {
		d.MonitorOn = true
		if d.Anomalies, err = c.auditTail(ctx, httpapi.AuditQuery{Type: findingType}, 10); err != nil {
			return err
		}
	}
	d.Health = c.health(ctx)
	if c.cfg.Position != nil {
		d.Position = c.cfg.Position()
	}
	return c.render(q, "overview", "Overview", d)
}

// findingType is the wire name of the traffic monitor's findings.
const findingType = "monitor.finding.v1"

// health is the readiness check's answer (store and broker), bounded.
func (c *Console) health(ctx context.Context) string {
	if c.cfg.Ready == nil {
		return "ok"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := c.cfg.Ready(ctx); err != nil {
		return err.Error()
	}
	return "ok"
}
