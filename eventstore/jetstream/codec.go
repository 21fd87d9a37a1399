package jetstream

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/e4c2/e4c2/eventstore"
)

// errMapping: a message of the log stream is not one of ours, or it does
// not fit its place in the log.
var errMapping = errors.New("jetstream: message mapping")

// envelopeFormat marks messages written by this package.
const envelopeFormat = 1

// envelope is the JSON payload of one log message: one event. Its global
// Position is the message's JetStream stream sequence, so it is not
// stored.
type envelope struct {
	Format        int    `json:"e4c2"`
	Stream        string `json:"stream"`
	Version       uint64 `json:"version"`
	ID            string `json:"id"`
	Type          string `json:"type"`
	PrevHash      []byte `json:"prev_hash"`
	Time          string `json:"time,omitempty"` // RFC 3339 with nanoseconds, UTC
	Actor         string `json:"actor,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	Suite         string `json:"suite,omitempty"`
	Mode          string `json:"mode,omitempty"`
	Data          []byte `json:"data,omitempty"`
}

// streamToken encodes a stream name as one subject token: unpadded
// base64url only uses [A-Za-z0-9_-], none of which NATS gives a meaning
// ('.', '*', '>', white space), and it is reversible and injective.
func streamToken(stream string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(stream))
}

// streamOf decodes the stream name from a log subject "<prefix>.s.<token>".
func streamOf(prefix, subject string) (string, error) {
	token, ok := strings.CutPrefix(subject, prefix+".s.")
	if !ok || token == "" || strings.Contains(token, ".") {
		return "", fmt.Errorf("%w: subject %q is not a log subject", errMapping, subject)
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", fmt.Errorf("%w: subject %q: stream token: %v", errMapping, subject, err)
	}
	return string(b), nil
}

// encodeRecord returns the payload of r (its Position is not stored).
func encodeRecord(r *eventstore.Record) ([]byte, error) {
	e := envelope{
		Format: envelopeFormat, Stream: r.Stream, Version: r.Version, ID: r.ID, Type: r.Type,
		PrevHash: r.PrevHash[:], Actor: r.Meta.Actor, CausationID: r.Meta.CausationID,
		CorrelationID: r.Meta.CorrelationID, Suite: r.Meta.Suite, Mode: r.Meta.Mode, Data: r.Data,
	}
	if !r.Meta.Time.IsZero() {
		e.Time = r.Meta.Time.UTC().Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(&e)
	if err != nil {
		return nil, fmt.Errorf("jetstream: encode event: %w", err)
	}
	return b, nil
}

// decodeRecord maps the message at stream sequence seq on subject back to
// a record, checking that the subject names the record's stream.
func decodeRecord(prefix, subject string, seq uint64, payload []byte) (eventstore.Record, error) {
	var r eventstore.Record
	var e envelope
	if err := json.Unmarshal(payload, &e); err != nil {
		return r, fmt.Errorf("%w: sequence %d: %v", errMapping, seq, err)
	}
	if e.Format != envelopeFormat {
		return r, fmt.Errorf("%w: sequence %d: not an e4c2 event (format %d)", errMapping, seq, e.Format)
	}
	stream, err := streamOf(prefix, subject)
	if err != nil {
		return r, err
	}
	if e.Stream != stream {
		return r, fmt.Errorf("%w: sequence %d: event of another stream than its subject", errMapping, seq)
	}
	if e.Version == 0 || e.ID == "" || e.Type == "" || len(e.PrevHash) != 32 {
		return r, fmt.Errorf("%w: sequence %d: missing version, id, type or previous hash", errMapping, seq)
	}
	if e.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, e.Time)
		if err != nil {
			return r, fmt.Errorf("%w: sequence %d: bad time", errMapping, seq)
		}
		r.Meta.Time = t.UTC()
	}
	r.Stream, r.Version, r.Position, r.ID, r.Type = e.Stream, e.Version, seq, e.ID, e.Type
	copy(r.PrevHash[:], e.PrevHash)
	r.Data = e.Data
	r.Meta.Actor, r.Meta.CausationID, r.Meta.CorrelationID = e.Actor, e.CausationID, e.CorrelationID
	r.Meta.Suite, r.Meta.Mode = e.Suite, e.Mode
	return r, nil
}
