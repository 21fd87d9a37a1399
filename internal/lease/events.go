package lease

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// StreamPrefix starts the stream of every lease: "lease-<duty>".
const StreamPrefix = "lease-"

// Stream returns the stream of duty's lease.
func Stream(duty string) string { return StreamPrefix + duty }

// Wire names of the lease events: the only table.
const (
	TypeAcquired = "lease.acquired.v1"
	TypeRenewed  = "lease.renewed.v1"
	TypeReleased = "lease.released.v1"
)

// WireNames returns every lease event wire name.
func WireNames() []string { return []string{TypeAcquired, TypeRenewed, TypeReleased} }

// IsLeaseEvent reports whether a wire name belongs to this package.
func IsLeaseEvent(wireType string) bool { return strings.HasPrefix(wireType, "lease.") }

// Event is the payload of every lease event.
type Event struct {
	// Duty names the work the lease guards ("delivery", "schedules").
	Duty string `json:"duty"`
	// Holder is the instance id of the writer (the holder, or for
	// released the former holder).
	Holder string `json:"holder"`
	// Term counts the changes of holder: acquired starts a term one above
	// the previous one; renewed and released keep it.
	Term uint64 `json:"term"`
	// DurationMS is the lease duration T the holder respects, in
	// milliseconds: a standby takes over after it saw no newer event for
	// that long on its own clock.
	DurationMS int64 `json:"duration_ms"`
}

// Duration returns the lease duration of e.
func (e Event) Duration() time.Duration { return time.Duration(e.DurationMS) * time.Millisecond }

// ErrInvalid: a lease event payload does not decode.
var ErrInvalid = errors.New("lease: invalid event payload")

// errUnknown: the wire name is not a lease event.
var errUnknown = errors.New("lease: unknown event type")

// Decode decodes the payload of a lease event (an Event).
func Decode(wireType string, data []byte) (any, error) {
	switch wireType {
	case TypeAcquired, TypeRenewed, TypeReleased:
		var e Event
		if err := json.Unmarshal(data, &e); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, wireType, err)
		}
		return e, nil
	}
	return nil, fmt.Errorf("%s: %w", wireType, errUnknown)
}
