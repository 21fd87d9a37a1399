package projections_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/lease"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

func TestAuditQueries(t *testing.T) {
	a := projections.NewAudit(0)
	var recs []eventstore.Record
	g := newLogGen(func(r eventstore.Record) { recs = append(recs, r) })
	g.key = bytes.Repeat([]byte{0xC3}, 32)
	g.population(4, 2, 1) // 2 topics, 4 clients, 4 links
	h := domain.TopicHash(topicName(0))
	g.add(domain.TopicStream(h), &domain.TopicKeyRotated{Topic: h, Key: domain.NewSecret(g.key)})
	g.add(domain.TopicStream(h), &domain.CommandQueued{Code: core.CmdSetTopicKey, Topic: h, TopicKeyVersion: 4,
		Recipients: []domain.Recipient{{Client: domain.ClientID(clientName(0))}, {Client: domain.ClientID(clientName(2))}}})
	for i, r := range recs {
		if i%2 == 1 {
			r.Meta.Actor = "token:ops"
		}
		if err := a.Apply(r); err != nil {
			t.Fatal(err)
		}
	}
	all, next := a.Query(projections.AuditQuery{Limit: 1000})
	if len(all) != len(recs) || next != 0 {
		t.Fatalf("%d entries, next %d", len(all), next)
	}
	for _, e := range all {
		if bytes.Contains([]byte(fmt.Sprintf("%+v", e)), []byte("c3c3c3")) {
			t.Fatal("key in audit entry")
		}
	}
	c2 := domain.ClientID(clientName(2))
	got, _ := a.Query(projections.AuditQuery{Client: &c2})
	// registration, link, and the queued rotation naming it as recipient
	if len(got) != 3 || got[2].Command != "SetTopicKey" || got[2].TopicName != topicName(0) {
		t.Fatalf("client filter: %+v", got)
	}
	got, _ = a.Query(projections.AuditQuery{Topic: &h})
	if len(got) != 5 { // created, 2 links, rotated, queued
		t.Fatalf("topic filter: %d", len(got))
	}
	if got[3].KeyVersion != 4 || got[3].Type != "topic.key_rotated.v1" {
		t.Fatalf("rotation entry %+v", got[3])
	}
	got, _ = a.Query(projections.AuditQuery{Actor: "token:ops"})
	if len(got) != len(recs)/2 {
		t.Fatalf("actor filter: %d", len(got))
	}
	from, to := recs[2].Meta.Time, recs[5].Meta.Time
	got, _ = a.Query(projections.AuditQuery{Since: from, Until: to})
	if len(got) != 3 || got[0].Position != 3 {
		t.Fatalf("time filter: %d", len(got))
	}
	// Paging walks everything exactly once.
	var seen []uint64
	var after uint64
	for {
		page, next := a.Query(projections.AuditQuery{After: after, Limit: 3})
		for _, e := range page {
			seen = append(seen, e.Position)
		}
		if next == 0 {
			break
		}
		after = next
	}
	if len(seen) != len(recs) {
		t.Fatalf("paging saw %d of %d", len(seen), len(recs))
	}
	for i, p := range seen {
		if p != uint64(i+1) {
			t.Fatalf("paging order %v", seen)
		}
	}
}

func TestAuditRetention(t *testing.T) {
	a := projections.NewAudit(100)
	g := newLogGen(func(r eventstore.Record) {
		if err := a.Apply(r); err != nil {
			t.Fatal(err)
		}
	})
	g.population(300, 3, 0)
	if a.Len() > 100 || a.Len() < 90 {
		t.Fatalf("kept %d entries", a.Len())
	}
	got, _ := a.Query(projections.AuditQuery{Limit: 1})
	if got[0].Position <= 200 {
		t.Fatalf("oldest kept entry %d", got[0].Position)
	}
}

// TestAuditLeaseEvents: a change of lease holder is an audit entry naming
// holder and term; a renewal is not (it only advances the position).
func TestAuditLeaseEvents(t *testing.T) {
	a := projections.NewAudit(0)
	recs := []eventstore.Record{
		{EventData: eventstore.EventData{Type: lease.TypeAcquired, Data: []byte(`{"duty":"delivery","holder":"c2-a/1","term":1,"duration_ms":8000}`)}, Stream: lease.Stream("delivery"), Version: 1, Position: 1},
		{EventData: eventstore.EventData{Type: lease.TypeRenewed, Data: []byte(`{"duty":"delivery","holder":"c2-a/1","term":1,"duration_ms":8000}`)}, Stream: lease.Stream("delivery"), Version: 2, Position: 2},
		{EventData: eventstore.EventData{Type: lease.TypeReleased, Data: []byte(`{"duty":"delivery","holder":"c2-a/1","term":1,"duration_ms":8000}`)}, Stream: lease.Stream("delivery"), Version: 3, Position: 3},
	}
	for _, r := range recs {
		if err := a.Apply(r); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := a.Query(projections.AuditQuery{})
	if len(got) != 2 || got[0].Type != lease.TypeAcquired || got[1].Type != lease.TypeReleased || a.Position() != 3 {
		t.Fatalf("entries %+v at position %d: want acquired and released, position 3", got, a.Position())
	}
	if want := "delivery lease: holder=c2-a/1 term=1 duration=8s"; got[0].Detail != want {
		t.Fatalf("detail %q, want %q", got[0].Detail, want)
	}
}
