package eventcodec

import (
	"fmt"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/sealing"
)

// EncodeDecision encodes the events of d for eventstore.Append: each event
// gets the id newID returns and a copy of meta, and its secrets are sealed
// for the stream version it will occupy. The clear keys of d are wiped
// afterwards, whatever the outcome.
func EncodeDecision(d domain.Decision, s sealing.Sealer, meta eventstore.Metadata, newID func() string) ([]eventstore.EventData, error) {
	defer domain.WipeSecrets(d.Events)
	out := make([]eventstore.EventData, len(d.Events))
	first := d.FirstVersion()
	for i, ev := range d.Events {
		var version uint64
		if first != 0 {
			version = first + uint64(i)
		} else if _, has := domain.SecretOf(ev); has {
			return nil, fmt.Errorf("eventcodec: %s: key material needs an exact expected version", ev.EventType())
		}
		data, err := Encode(ev, d.Stream, version, s)
		if err != nil {
			return nil, err
		}
		out[i] = eventstore.EventData{ID: newID(), Type: ev.EventType().WireName(), Data: data, Meta: meta}
	}
	return out, nil
}

// DecodeRecord decodes the event of a stored record.
func DecodeRecord(r *eventstore.Record) (domain.Event, error) { return Decode(r.Type, r.Data) }
