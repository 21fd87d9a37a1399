package esdb

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/e4c2/e4c2/eventstore"
)

// metaFormat marks event metadata written by this package.
const metaFormat = 1

// errMapping: an esdb event is not one of ours or its metadata is broken.
var errMapping = errors.New("esdb: event mapping")

// eventMeta is the JSON user metadata of every event in the log stream.
type eventMeta struct {
	Format        int    `json:"e4c2"`
	ID            string `json:"id"`
	Stream        string `json:"stream"`
	Version       uint64 `json:"version"`
	Position      uint64 `json:"position"`
	PrevHash      string `json:"prev_hash"`
	Time          string `json:"time,omitempty"` // RFC 3339 with nanoseconds, UTC
	Actor         string `json:"actor,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	Suite         string `json:"suite,omitempty"`
	Mode          string `json:"mode,omitempty"`
}

// idNamespace derives esdb event UUIDs from ids that are not 16 hex bytes.
var idNamespace = uuid.MustParse("5c0b7a2e-6f1d-4d8e-9a57-e4c2e4c2e4c2")

// eventUUID maps our event id to the esdb event id. Our ids are the hex of
// 16 random bytes, which are used as the UUID directly (esdb then
// deduplicates a retried append); any other id is hashed into a name-based
// UUID. The id itself is always kept in the metadata.
func eventUUID(id string) uuid.UUID {
	if len(id) == 32 {
		if b, err := hex.DecodeString(id); err == nil {
			u, _ := uuid.FromBytes(b)
			return u
		}
	}
	sum := sha256.Sum256([]byte(id))
	return uuid.NewSHA1(idNamespace, sum[:])
}

// toESDB maps a record (with its stream, version, position and PrevHash
// set) to the esdb event appended to the log stream.
func toESDB(r *eventstore.Record) (esdb.EventData, error) {
	m := eventMeta{
		Format: metaFormat, ID: r.ID, Stream: r.Stream, Version: r.Version, Position: r.Position,
		PrevHash: hex.EncodeToString(r.PrevHash[:]), Actor: r.Meta.Actor, CausationID: r.Meta.CausationID,
		CorrelationID: r.Meta.CorrelationID, Suite: r.Meta.Suite, Mode: r.Meta.Mode,
	}
	if !r.Meta.Time.IsZero() {
		m.Time = r.Meta.Time.UTC().Format(time.RFC3339Nano)
	}
	mb, err := json.Marshal(&m)
	if err != nil {
		return esdb.EventData{}, fmt.Errorf("esdb: encode metadata: %w", err)
	}
	if strings.HasPrefix(r.Type, "$") {
		return esdb.EventData{}, fmt.Errorf("%w: event type %q is reserved for esdb system events", eventstore.ErrInvalidEvent, r.Type)
	}
	return esdb.EventData{
		EventID:     eventUUID(r.ID),
		EventType:   r.Type,
		ContentType: esdb.ContentTypeBinary,
		Data:        r.Data,
		Metadata:    mb,
	}, nil
}

// fromESDB maps an event of the log stream back to a record. Its position
// is its log revision plus one, and must match the metadata.
func fromESDB(e *esdb.RecordedEvent) (eventstore.Record, error) {
	var r eventstore.Record
	if e == nil {
		return r, fmt.Errorf("%w: missing event", errMapping)
	}
	var m eventMeta
	if err := json.Unmarshal(e.UserMetadata, &m); err != nil {
		return r, fmt.Errorf("%w: revision %d: metadata: %v", errMapping, e.EventNumber, err)
	}
	if m.Format != metaFormat {
		return r, fmt.Errorf("%w: revision %d: not an e4c2 event (format %d)", errMapping, e.EventNumber, m.Format)
	}
	pos := e.EventNumber + 1
	if m.Position != pos {
		return r, fmt.Errorf("%w: revision %d: metadata says position %d", errMapping, e.EventNumber, m.Position)
	}
	if m.Stream == "" || m.Version == 0 || m.ID == "" || e.EventType == "" {
		return r, fmt.Errorf("%w: revision %d: missing stream, version, id or type", errMapping, e.EventNumber)
	}
	prev, err := hex.DecodeString(m.PrevHash)
	if err != nil || len(prev) != 32 {
		return r, fmt.Errorf("%w: revision %d: bad previous hash", errMapping, e.EventNumber)
	}
	if m.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, m.Time)
		if err != nil {
			return r, fmt.Errorf("%w: revision %d: bad time", errMapping, e.EventNumber)
		}
		r.Meta.Time = t.UTC()
	}
	r.ID, r.Type, r.Stream, r.Version, r.Position = m.ID, e.EventType, m.Stream, m.Version, pos
	copy(r.PrevHash[:], prev)
	if len(e.Data) > 0 {
		r.Data = e.Data
	}
	r.Meta.Actor, r.Meta.CausationID, r.Meta.CorrelationID = m.Actor, m.CausationID, m.CorrelationID
	r.Meta.Suite, r.Meta.Mode = m.Suite, m.Mode
	return r, nil
}

// logExpected is the esdb expected revision of the log stream when it
// holds n events: esdb revisions are 0-based, our counts 1-based.
func logExpected(n uint64) esdb.ExpectedRevision {
	if n == 0 {
		return esdb.NoStream{}
	}
	return esdb.Revision(n - 1)
}

// logFrom is the esdb stream position of our global position pos (>= 1).
func logFrom(pos uint64) esdb.StreamPosition {
	if pos <= 1 {
		return esdb.Start{}
	}
	return esdb.Revision(pos - 1)
}
