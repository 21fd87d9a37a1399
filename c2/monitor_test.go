package c2_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

// TestTopicKeyHistory: after three rotations the history holds the
// current key, the previous one with the time of the last rotation, and
// the older ones newest first, bounded; a re-created topic forgets the
// keys of its first life.
func TestTopicKeyHistory(t *testing.T) {
	e := newEnv(t, core.SymKey)
	ctx := context.Background()
	o := c2.Origin{Actor: "test"}
	var keys [][]byte
	for i := range 4 {
		op := e.svc.RotateTopic
		if i == 0 {
			op = e.svc.NewTopic
		}
		if _, err := op(ctx, o, "plant/t1"); err != nil {
			t.Fatal(err)
		}
		k, err := e.svc.ExportTopicKey(ctx, o, "plant/t1")
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	h := domain.TopicHash("plant/t1")
	hist, err := e.svc.TopicKeyHistory(ctx, h, 1)
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := e.svc.TopicKeyVersion(h)
	if hist.Current.Version != cur || !bytes.Equal(hist.Current.Key, keys[3]) ||
		!bytes.Equal(hist.Previous.Key, keys[2]) || len(hist.Older) != 1 || !bytes.Equal(hist.Older[0].Key, keys[1]) {
		t.Fatalf("history: current v%d (want v%d), previous v%d, %d older", hist.Current.Version, cur, hist.Previous.Version, len(hist.Older))
	}
	if hist.Replaced.IsZero() || !(hist.Previous.Version < hist.Current.Version && hist.Older[0].Version < hist.Previous.Version) {
		t.Fatalf("versions or replacement time wrong: %+v", hist.Replaced)
	}
	hist.Wipe()
	if !bytes.Equal(hist.Current.Key, make([]byte, len(keys[3]))) {
		t.Fatal("Wipe left the key")
	}

	if _, err := e.svc.RemoveTopic(ctx, o, "plant/t1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.NewTopic(ctx, o, "plant/t1"); err != nil {
		t.Fatal(err)
	}
	hist, err = e.svc.TopicKeyHistory(ctx, h, 8)
	if err != nil {
		t.Fatal(err)
	}
	if hist.Previous.Version != 0 || len(hist.Older) != 0 {
		t.Fatalf("a re-created topic kept its old keys: previous v%d, %d older", hist.Previous.Version, len(hist.Older))
	}
}

// TestRecordFindings: findings are events of the monitor stream, by the
// monitor actor, in the audit, and the findings query returns them newest
// first per topic.
func TestRecordFindings(t *testing.T) {
	e := newEnv(t, core.SymKey)
	ctx := context.Background()
	if _, err := e.svc.NewTopic(ctx, c2.Origin{}, "a"); err != nil {
		t.Fatal(err)
	}
	fs := []domain.MonitorFinding{
		{Kind: "forged", Topic: domain.TopicHash("a"), WindowStart: 100, WindowEnd: 160, Count: 12},
		{Kind: "plaintext", Topic: domain.TopicHash("b"), WindowStart: 100, WindowEnd: 160, Count: 1, Detail: string(bytes.Repeat([]byte("x"), 1000))},
		{Kind: "replay", Topic: domain.TopicHash("a"), WindowStart: 160, WindowEnd: 220, Count: 2},
	}
	if err := e.svc.RecordFindings(ctx, c2.Origin{}, fs); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.RecordFindings(ctx, c2.Origin{}, []domain.MonitorFinding{{}}); err == nil {
		t.Fatal("a finding without a kind was recorded")
	}
	recs, err := e.store.ReadStream(ctx, domain.MonitorStream, 1)
	if err != nil || len(recs) != 3 {
		t.Fatalf("monitor stream: %d records, %v", len(recs), err)
	}
	if err := e.svc.WaitPosition(ctx, recs[2].Position); err != nil {
		t.Fatal(err)
	}
	entries, _ := e.svc.Audit(projections.AuditQuery{Type: "monitor.finding.v1"})
	if len(entries) != 3 || entries[0].Actor != c2.MonitorActor || entries[0].TopicName != "a" {
		t.Fatalf("audit: %+v", entries)
	}
	got, err := e.svc.Findings(ctx, c2.FindingQuery{Topic: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Kind != "replay" || got[1].Kind != "forged" || got[1].Count != 12 || got[1].TopicName != "a" {
		t.Fatalf("findings of a: %+v", got)
	}
	all, err := e.svc.Findings(ctx, c2.FindingQuery{Kind: "plaintext"})
	if err != nil || len(all) != 1 || len(all[0].Detail) != 256 {
		t.Fatalf("plaintext findings: %+v, %v", all, err)
	}
}

// TestFindingsKindAndClient: a kind buried under many newer findings of
// another kind is still found (the kind is chosen before the newest are
// kept), and the client filter keeps the findings of one publisher.
func TestFindingsKindAndClient(t *testing.T) {
	e := newEnv(t, core.SymKey)
	ctx := context.Background()
	dev := domain.ID{1}
	fs := []domain.MonitorFinding{{Kind: "old_key", Topic: domain.TopicHash("a"), Client: dev, KeyVersion: 1, WindowStart: 1, WindowEnd: 61, Count: 3}}
	for i := range 300 {
		fs = append(fs, domain.MonitorFinding{Kind: "forged", Topic: domain.TopicHash("a"), WindowStart: uint64(100 + i), WindowEnd: uint64(160 + i), Count: 1})
	}
	if err := e.svc.RecordFindings(ctx, c2.Origin{}, fs); err != nil {
		t.Fatal(err)
	}
	recs, err := e.store.ReadStream(ctx, domain.MonitorStream, 1)
	if err != nil || len(recs) != len(fs) {
		t.Fatalf("monitor stream: %d records, %v", len(recs), err)
	}
	if err := e.svc.WaitPosition(ctx, recs[len(recs)-1].Position); err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.Findings(ctx, c2.FindingQuery{Kind: "old_key", Limit: 10})
	if err != nil || len(got) != 1 || got[0].Client != dev || got[0].KeyVersion != 1 {
		t.Fatalf("old_key findings: %+v, %v", got, err)
	}
	got, err = e.svc.Findings(ctx, c2.FindingQuery{Client: &dev, Limit: 10})
	if err != nil || len(got) != 1 || got[0].Kind != "old_key" {
		t.Fatalf("findings of the device: %+v, %v", got, err)
	}
	other := domain.ID{2}
	if got, err = e.svc.Findings(ctx, c2.FindingQuery{Client: &other}); err != nil || len(got) != 0 {
		t.Fatalf("findings of another device: %+v, %v", got, err)
	}
	if got, err = e.svc.Findings(ctx, c2.FindingQuery{Kind: "forged", Limit: 5}); err != nil || len(got) != 5 || got[0].WindowStart != 399 {
		t.Fatalf("newest forged findings: %+v, %v", got, err)
	}
}
