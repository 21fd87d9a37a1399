// Package eventreg is the one registry of every event type a log may hold,
// with its decoder. Every offline reader of a whole log (verify, replay,
// export, import, audit, master-key rotate) decodes through it, so a log
// that holds automation rules (or any other component's events) reads the
// same in every tool.
//
// The list is explicit: no package registers itself from an init
// function, so what a tool can read is visible here, and the test of this
// package fails when domain's or automation's catalogue names a wire type
// that no entry decodes.
package eventreg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/e4c2/e4c2/automation"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/eventcodec"
)

// ErrUnknownEvent: a record's wire type is in no catalogue of the
// registry. It wraps domain.ErrUnknownEvent so callers testing for that
// keep working.
var ErrUnknownEvent = fmt.Errorf("eventreg: %w", domain.ErrUnknownEvent)

// Owner is one catalogue of wire names and the decoder of all of them.
type Owner struct {
	// Name names the component that writes the events.
	Name string
	// WireNames returns every wire name of the component's catalogue.
	WireNames func() []string
	// Decode decodes a payload of one of those wire names. It never
	// unseals anything.
	Decode func(wireType string, data []byte) (any, error)
}

// Owners is the registry: every component that writes events to the log.
// A new component adds its line here.
func Owners() []Owner {
	return []Owner{
		{Name: "domain", WireNames: domain.WireNames, Decode: func(t string, b []byte) (any, error) { return eventcodec.Decode(t, b) }},
		{Name: "automation", WireNames: automation.WireNames, Decode: automation.DecodeEvent},
		{Name: "eventreg", WireNames: wireNames, Decode: decodeOwn},
	}
}

// index maps each wire name to its owner; built once from Owners.
var index = func() map[string]Owner {
	m := make(map[string]Owner)
	for _, o := range Owners() {
		for _, n := range o.WireNames() {
			m[n] = o
		}
	}
	return m
}()

// Known reports whether some catalogue of the registry names wireType.
func Known(wireType string) bool { _, ok := index[wireType]; return ok }

// WireNames returns every wire name the registry decodes.
func WireNames() []string {
	var out []string
	for _, o := range Owners() {
		out = append(out, o.WireNames()...)
	}
	return out
}

// Decode decodes the payload of a record with its owner's decoder. A
// domain event comes back as a domain.Event (its secrets still sealed).
// An unknown wire type returns an error wrapping ErrUnknownEvent; a
// payload that does not decode, the owner's error.
func Decode(r *eventstore.Record) (any, error) {
	o, ok := index[r.Type]
	if !ok {
		return nil, fmt.Errorf("decode %q: %w", r.Type, ErrUnknownEvent)
	}
	ev, err := o.Decode(r.Type, r.Data)
	if err != nil {
		return nil, fmt.Errorf("decode %q (%s): %w", r.Type, o.Name, err)
	}
	return ev, nil
}

// CheckAll decodes every record of the log and returns the first that
// does not decode, as an error naming its position and type.
func CheckAll(ctx context.Context, st eventstore.Store, fn func(r *eventstore.Record, ev any) error) error {
	const page = 1024
	for from := uint64(1); ; {
		recs, err := st.ReadAll(ctx, from, page)
		if err != nil {
			return fmt.Errorf("read store: %w", err)
		}
		for i := range recs {
			r := &recs[i]
			ev, err := Decode(r)
			if err != nil {
				return fmt.Errorf("event at position %d (%s) does not decode: %w", r.Position, r.Type, err)
			}
			if fn != nil {
				if err := fn(r, ev); err != nil {
					return err
				}
			}
		}
		if len(recs) < page {
			return nil
		}
		from = recs[len(recs)-1].Position + 1
	}
}

// TypeBrokenSourceAccepted is the event an import or export appends to the
// new log when the operator copied a source whose hash chain is broken
// (--accept-broken): the copy is re-chained, so this event is the only
// record that the source did not verify.
const TypeBrokenSourceAccepted = "store.broken_source_accepted.v1"

// StreamIntegrity is the stream of TypeBrokenSourceAccepted events.
const StreamIntegrity = "store-integrity"

// BrokenSourceAccepted is the payload of TypeBrokenSourceAccepted. It
// holds what Verify said of the source, never event data.
type BrokenSourceAccepted struct {
	Source   string `json:"source"`
	Stream   string `json:"stream"`
	Version  uint64 `json:"version"`
	Position uint64 `json:"position"`
	Reason   string `json:"reason"`
}

func wireNames() []string { return []string{TypeBrokenSourceAccepted} }

// errInvalid: a payload of this package's events does not decode.
var errInvalid = errors.New("eventreg: invalid event payload")

func decodeOwn(wireType string, data []byte) (any, error) {
	switch wireType {
	case TypeBrokenSourceAccepted:
		var p BrokenSourceAccepted
		if err := json.Unmarshal(data, &p); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", errInvalid, wireType, err)
		}
		return p, nil
	}
	return nil, fmt.Errorf("%s: %w", wireType, ErrUnknownEvent)
}
