package eventstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/memstore"
)

func sample() eventstore.Record {
	return eventstore.Record{
		EventData: eventstore.EventData{
			ID: "00112233445566778899aabbccddeeff", Type: "topic.created.v1", Data: []byte(`{"topic":"a"}`),
			Meta: eventstore.Metadata{Time: time.Date(2026, 1, 1, 0, 0, 0, 5, time.UTC), Actor: "system",
				CausationID: "c", CorrelationID: "r", Suite: "standard", Mode: "sk"},
		},
		Stream: "topic-a", Version: 1, Position: 1,
	}
}

// TestHashRecordFields checks that every field but the position changes the
// hash, and that moving bytes between adjacent fields does too.
func TestHashRecordFields(t *testing.T) {
	base := sample()
	h := eventstore.HashRecord(&base)
	muts := map[string]func(r *eventstore.Record){
		"stream":      func(r *eventstore.Record) { r.Stream = "topic-b" },
		"version":     func(r *eventstore.Record) { r.Version = 2 },
		"id":          func(r *eventstore.Record) { r.ID = "x" },
		"type":        func(r *eventstore.Record) { r.Type = "topic.removed.v1" },
		"time":        func(r *eventstore.Record) { r.Meta.Time = r.Meta.Time.Add(1) },
		"zero time":   func(r *eventstore.Record) { r.Meta.Time = time.Time{} },
		"epoch":       func(r *eventstore.Record) { r.Meta.Time = time.Unix(0, 0) },
		"actor":       func(r *eventstore.Record) { r.Meta.Actor = "cli:x" },
		"causation":   func(r *eventstore.Record) { r.Meta.CausationID = "d" },
		"correlation": func(r *eventstore.Record) { r.Meta.CorrelationID = "s" },
		"suite":       func(r *eventstore.Record) { r.Meta.Suite = "fips" },
		"mode":        func(r *eventstore.Record) { r.Meta.Mode = "pk" },
		"data":        func(r *eventstore.Record) { r.Data = []byte(`{"topic":"b"}`) },
		"prevhash":    func(r *eventstore.Record) { r.PrevHash[31] = 1 },
		"boundary":    func(r *eventstore.Record) { r.Stream, r.ID = "topic-a0", "0112233445566778899aabbccddeeff" },
	}
	seen := map[[32]byte]string{h: "base"}
	for name, mut := range muts {
		r := sample()
		mut(&r)
		got := eventstore.HashRecord(&r)
		if prev, dup := seen[got]; dup {
			t.Errorf("%s: same hash as %s", name, prev)
		}
		seen[got] = name
	}
	r := sample()
	r.Position = 99
	r.Meta.Time = r.Meta.Time.In(time.FixedZone("x", 3600))
	if eventstore.HashRecord(&r) != h {
		t.Error("position or time zone changed the hash")
	}
	// The encoding is part of the stored format: rebuild it by hand from
	// the documented layout (8-byte BE lengths, fields in order).
	var enc []byte
	field := func(b []byte) {
		enc = binary.BigEndian.AppendUint64(enc, uint64(len(b)))
		enc = append(enc, b...)
	}
	field([]byte("e4c2/eventstore/record/v1"))
	field([]byte("topic-a"))
	enc = binary.BigEndian.AppendUint64(enc, 1)
	field([]byte("00112233445566778899aabbccddeeff"))
	field([]byte("topic.created.v1"))
	enc = append(enc, 1)
	enc = binary.BigEndian.AppendUint64(enc, uint64(base.Meta.Time.Unix()))
	enc = binary.BigEndian.AppendUint32(enc, 5)
	for _, f := range []string{"system", "c", "r", "standard", "sk", `{"topic":"a"}`} {
		field([]byte(f))
	}
	enc = append(enc, make([]byte, 32)...)
	if want := sha256.Sum256(enc); want != h {
		t.Errorf("HashRecord(sample) = %s, want %s (the stored chain format changed)", hex.EncodeToString(h[:]), hex.EncodeToString(want[:]))
	}
}

func TestVerifyEmptyAndErrors(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	rep, err := eventstore.Verify(ctx, s, nil)
	if err != nil || rep.Records != 0 || rep.LastPosition != 0 {
		t.Fatalf("empty log: %+v, %v", rep, err)
	}
	s.Close()
	if _, err := eventstore.Verify(ctx, s, nil); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("closed store: %v", err)
	}
	ce := &eventstore.ChainError{Stream: "s", Version: 2, Position: 3, Reason: "r"}
	if !errors.Is(ce, eventstore.ErrChainBroken) {
		t.Fatal("ChainError does not unwrap to ErrChainBroken")
	}
}
