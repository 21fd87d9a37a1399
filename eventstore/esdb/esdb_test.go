package esdb

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/storetest"
)

func sampleRecord() eventstore.Record {
	r := eventstore.Record{EventData: storetest.Event(4), Stream: "client-7", Version: 3, Position: 12}
	r.PrevHash[0], r.PrevHash[31] = 0xaa, 0x55
	return r
}

// recorded simulates what the server returns for an appended event.
func recorded(ed esdb.EventData, revision uint64) *esdb.RecordedEvent {
	return &esdb.RecordedEvent{
		EventID: ed.EventID, EventType: ed.EventType, StreamID: DefaultLogStream, EventNumber: revision,
		Data: ed.Data, UserMetadata: ed.Metadata, ContentType: "application/octet-stream",
	}
}

func TestMappingRoundTrip(t *testing.T) {
	for name, r := range map[string]eventstore.Record{
		"full":    sampleRecord(),
		"minimal": {EventData: eventstore.EventData{ID: "not-hex-id", Type: "t.v1"}, Stream: "s", Version: 1, Position: 1},
	} {
		t.Run(name, func(t *testing.T) {
			ed, err := toESDB(&r)
			if err != nil {
				t.Fatal(err)
			}
			if ed.EventType != r.Type || !bytes.Equal(ed.Data, r.Data) || ed.ContentType != esdb.ContentTypeBinary {
				t.Fatalf("esdb event %+v", ed)
			}
			var m map[string]any
			if err := json.Unmarshal(ed.Metadata, &m); err != nil {
				t.Fatalf("metadata is not JSON: %v", err)
			}
			if m["stream"] != r.Stream || m["id"] != r.ID || m["version"] != float64(r.Version) || m["position"] != float64(r.Position) {
				t.Fatalf("metadata %v", m)
			}
			got, err := fromESDB(recorded(ed, r.Position-1))
			if err != nil {
				t.Fatal(err)
			}
			if got.Stream != r.Stream || got.Version != r.Version || got.Position != r.Position || got.PrevHash != r.PrevHash ||
				eventstore.HashRecord(&got) != eventstore.HashRecord(&r) {
				t.Fatalf("round trip changed the record: %+v", got)
			}
			if !got.Meta.Time.Equal(r.Meta.Time) {
				t.Fatalf("time %v, want %v", got.Meta.Time, r.Meta.Time)
			}
		})
	}
}

func TestEventUUID(t *testing.T) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	if u := eventUUID(id); !bytes.Equal(u[:], b[:]) {
		t.Fatal("a 16-byte hex id is not used as the UUID")
	}
	if a1, a2 := eventUUID("abc"), eventUUID("abc"); a1 != a2 || a1 == eventUUID("abd") {
		t.Fatal("name-based UUIDs are not stable and distinct")
	}
	if eventUUID(strings.ToUpper(id)) == eventUUID("zz"+id[2:]) {
		t.Fatal("unexpected UUID collision")
	}
}

func TestMappingRejects(t *testing.T) {
	r := sampleRecord()
	ed, _ := toESDB(&r)
	good := recorded(ed, r.Position-1)
	alter := func(f func(m map[string]any)) *esdb.RecordedEvent {
		var m map[string]any
		_ = json.Unmarshal(ed.Metadata, &m)
		f(m)
		e := *good
		e.UserMetadata, _ = json.Marshal(m)
		return &e
	}
	cases := map[string]*esdb.RecordedEvent{
		"wrong revision":    recorded(ed, r.Position), // position in metadata no longer matches
		"not ours":          alter(func(m map[string]any) { delete(m, "e4c2") }),
		"future format":     alter(func(m map[string]any) { m["e4c2"] = 2 }),
		"short prev hash":   alter(func(m map[string]any) { m["prev_hash"] = "abcd" }),
		"bad prev hash":     alter(func(m map[string]any) { m["prev_hash"] = strings.Repeat("zz", 32) }),
		"bad time":          alter(func(m map[string]any) { m["time"] = "yesterday" }),
		"no stream":         alter(func(m map[string]any) { delete(m, "stream") }),
		"version zero":      alter(func(m map[string]any) { m["version"] = 0 }),
		"metadata not json": func() *esdb.RecordedEvent { e := *good; e.UserMetadata = []byte("{"); return &e }(),
		"nil":               nil,
	}
	for name, e := range cases {
		if _, err := fromESDB(e); !errors.Is(err, errMapping) {
			t.Errorf("%s: %v, want a mapping error", name, err)
		}
	}
	sys := sampleRecord()
	sys.Type = "$metadata"
	if _, err := toESDB(&sys); !errors.Is(err, eventstore.ErrInvalidEvent) {
		t.Fatalf("system event type: %v", err)
	}
}

func TestRevisionMapping(t *testing.T) {
	if _, ok := logExpected(0).(esdb.NoStream); !ok {
		t.Fatal("an empty log must be expected as NoStream")
	}
	if r, ok := logExpected(5).(esdb.StreamRevision); !ok || r.Value != 4 {
		t.Fatalf("a log of 5 events must expect revision 4, got %#v", logExpected(5))
	}
	if _, ok := logFrom(1).(esdb.Start); !ok {
		t.Fatal("position 1 must read from the start")
	}
	if r, ok := logFrom(10).(esdb.StreamRevision); !ok || r.Value != 9 {
		t.Fatalf("position 10 must read revision 9, got %#v", logFrom(10))
	}
}

func TestIndexSequence(t *testing.T) {
	ix := index{streams: map[string]*streamIndex{}}
	r1 := eventstore.Record{EventData: storetest.Event(1), Stream: "a", Version: 1, Position: 1}
	if err := ix.add(&r1); err != nil {
		t.Fatal(err)
	}
	r2 := eventstore.Record{EventData: storetest.Event(2), Stream: "a", Version: 3, Position: 2}
	if err := ix.add(&r2); err == nil {
		t.Fatal("a version gap was indexed")
	}
	r3 := eventstore.Record{EventData: storetest.Event(3), Stream: "b", Version: 1, Position: 5}
	if err := ix.add(&r3); err == nil {
		t.Fatal("a position gap was indexed")
	}
	if ix.streams["a"].hash != eventstore.HashRecord(&r1) || ix.n != 1 {
		t.Fatal("index head not updated")
	}
}

// TestConformance runs the storetest suite against a real server, given by
// E4C2_ESDB_URL. Each test uses its own log stream.
func TestConformance(t *testing.T) {
	url := os.Getenv("E4C2_ESDB_URL")
	if url == "" {
		t.Skip("E4C2_ESDB_URL is not set: no EventStoreDB server to run the esdb conformance suite against " +
			`(e.g. E4C2_ESDB_URL="esdb://localhost:2113?tls=false")`)
	}
	storetest.RunBackend(t, storetest.Backend{
		Timeout: 60 * time.Second,
		Open: func(t *testing.T) (eventstore.Store, func() eventstore.Store) {
			var b [6]byte
			_, _ = rand.Read(b[:])
			opts := &Options{LogStream: "e4c2-test-" + hex.EncodeToString(b[:]) + "-log"}
			open := func() eventstore.Store {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				s, err := Open(ctx, url, opts)
				if err != nil {
					t.Fatalf("esdb open: %v", err)
				}
				return s
			}
			return open(), open
		},
	})
}
