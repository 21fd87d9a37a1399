package projections

import (
	"fmt"
	"strings"
	"time"

	"github.com/e4c2/e4c2/domain"
)

// keyUseDetail is the audit line of a key.used.v1: how often the actor
// (the entry's Actor) used the topic key, in which minute.
func keyUseDetail(x *domain.KeyUsed) string {
	d := fmt.Sprintf("topic key used by the helpers: protect x%d, unprotect x%d", x.Protects, x.Unprotects)
	if x.Failures > 0 {
		d += fmt.Sprintf(" (%d did not open)", x.Failures)
	}
	return d + " in the minute from " + time.Unix(int64(x.Minute), 0).UTC().Format("2006-01-02T15:04Z")
}

// findingDetail is the audit line of a monitor finding.
// IsFindingOfKind says whether an audit entry is a monitor finding of
// kind, from its detail (which findingDetail writes "monitor: KIND x...").
// It lets a query select a kind without decoding every record.
func IsFindingOfKind(e AuditEntry, kind string) bool {
	return e.Type == domain.TypeMonitorFinding.WireName() && strings.HasPrefix(e.Detail, "monitor: "+kind+" x")
}

func findingDetail(x *domain.MonitorFinding) string {
	d := fmt.Sprintf("monitor: %s x%d from %s to %s", x.Kind, x.Count,
		time.Unix(int64(x.WindowStart), 0).UTC().Format("2006-01-02T15:04:05Z"),
		time.Unix(int64(x.WindowEnd), 0).UTC().Format("2006-01-02T15:04:05Z"))
	if x.Detail != "" {
		d += " (" + x.Detail + ")"
	}
	return d
}
