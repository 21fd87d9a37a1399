package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/e4c2/e4c2/transport/http/apitypes"
)

type (
	// Finding is one finding of the traffic monitor (never a payload or a key).
	Finding = apitypes.Finding
	// FindingList is the answer of Findings.
	FindingList = apitypes.FindingList
	// MonitorStatus is the answer of MonitorStatus.
	MonitorStatus = apitypes.MonitorStatus
)

// FindingQuery filters the findings; zero fields do not filter. Limit 0
// takes the server's default (100); the server refuses more than 1000.
type FindingQuery struct {
	Topic  string
	Client string // name or hex id of the publisher
	Kind   string // e.g. old_key, forged, plaintext, replay, rate_spike
	Since  time.Time
	Limit  int
}

// Findings returns the monitor's findings in the log, newest first, and
// whether the server's own monitor runs.
func (c *Client) Findings(ctx context.Context, q FindingQuery) (FindingList, error) {
	v := url.Values{}
	for k, s := range map[string]string{"topic": q.Topic, "client": q.Client, "kind": q.Kind} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out FindingList
	err := c.do(ctx, http.MethodGet, Prefix+"/findings", v, nil, &out)
	return out, err
}

// MonitorStatus returns the status of the server's traffic monitor
// (Enabled false and nothing else when it is off).
func (c *Client) MonitorStatus(ctx context.Context) (MonitorStatus, error) {
	var out MonitorStatus
	err := c.do(ctx, http.MethodGet, Prefix+"/monitor", nil, nil, &out)
	return out, err
}
