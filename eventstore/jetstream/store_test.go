package jetstream

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	jsapi "github.com/nats-io/nats.go/jetstream"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/memstore"
	"github.com/e4c2/e4c2/eventstore/storetest"
)

// openOn returns a storetest opener of fresh stores (a new stream name per
// test) on the servers at url.
func openOn(url string, replicas int) storetest.Opener {
	return func(t *testing.T) (eventstore.Store, func() eventstore.Store) {
		t.Helper()
		opts := &Options{Stream: uniqName("T"), Replicas: replicas}
		opts.SubjectPrefix = "p" + opts.Stream[2:]
		open := func() eventstore.Store {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := Open(ctx, url, opts)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return s
		}
		return open(), open
	}
}

// TestConformanceSingleNode runs the conformance suite on one embedded
// nats-server.
func TestConformanceSingleNode(t *testing.T) {
	srv := startServer(t, "single", t.TempDir(), 0, nil)
	t.Cleanup(srv.Shutdown)
	storetest.RunBackend(t, storetest.Backend{Open: openOn(clientURL(srv), 1)})
}

func TestSubjectToken(t *testing.T) {
	for _, name := range []string{"client-1", "a.b", "*", ">", "with space", "ünïcode", "x/y\\z", "$sys"} {
		subj := "e4c2.s." + streamToken(name)
		if got, err := streamOf("e4c2", subj); err != nil || got != name {
			t.Errorf("stream %q: subject %q decodes to %q, %v", name, subj, got, err)
		}
		for _, c := range streamToken(name) {
			if c == '.' || c == '*' || c == '>' || c == ' ' {
				t.Errorf("stream %q: token holds %q", name, c)
			}
		}
	}
	if _, err := streamOf("e4c2", "e4c2.s.a.b"); !errors.Is(err, errMapping) {
		t.Errorf("a subject with two tokens after the prefix decoded: %v", err)
	}
	if _, err := streamOf("e4c2", "other.s.YQ"); !errors.Is(err, errMapping) {
		t.Errorf("a subject of another prefix decoded: %v", err)
	}
}

func TestParseURL(t *testing.T) {
	servers, o, err := ParseURL("nats://a:4222,nats://b:4222?replicas=3&stream=LOG&prefix=log")
	if err != nil {
		t.Fatal(err)
	}
	if servers != "nats://a:4222,nats://b:4222" || o.Replicas != 3 || o.Stream != "LOG" || o.SubjectPrefix != "log" {
		t.Fatalf("ParseURL: %q %+v", servers, o)
	}
	for _, bad := range []string{"nats://a?replicas=0", "nats://a?bogus=1", "esdb://a", "nats://a,/tmp/x"} {
		if _, _, err := ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q): no error", bad)
		}
	}
	if _, _, err := ParseURL("http://user:secret@h"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("ParseURL error leaks the password or is missing: %v", err)
	}
}

// TestParseURLTokenFile: token_file reads the token once (a comma in the
// path survives when escaped), and a missing or empty file is an error
// naming the file, never a token.
func TestParseURLTokenFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a,b.token")
	if err := os.WriteFile(path, []byte("  s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	servers, o, err := ParseURL("nats://a:4222,nats://b:4222?" + url.Values{"token_file": {path}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if servers != "nats://a:4222,nats://b:4222" || len(o.NATSOptions) != 1 {
		t.Fatalf("ParseURL: %q, %d NATS options", servers, len(o.NATSOptions))
	}
	var no nats.Options
	if err := o.NATSOptions[0](&no); err != nil || no.Token != "s3cret-token" {
		t.Fatalf("token option: %q, %v", no.Token, err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{filepath.Join(dir, "missing"), empty} {
		_, _, err := ParseURL("nats://a?" + url.Values{"token_file": {bad}}.Encode())
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("token_file %s: %v, want an error naming it", bad, err)
		}
	}
}

// TestLostAnswer publishes an append's messages as a first attempt whose
// answer is lost, then runs the append: it must find its events stored
// and report their version instead of appending them again or reporting a
// conflict; publishing the same messages again must store nothing.
func TestLostAnswer(t *testing.T) {
	srv := startServer(t, "lost", t.TempDir(), 0, nil)
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, clientURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const stream = "client-1"
	if _, err := s.Append(ctx, stream, eventstore.NoStream, storetest.Event(0)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{2, 1} { // an atomic batch, then a single message
		before, err := s.ReadStream(ctx, stream, 1)
		if err != nil {
			t.Fatal(err)
		}
		evs := make([]eventstore.EventData, n)
		for i := range evs {
			evs[i] = storetest.Event(10 + i)
		}
		a := &appendOp{s: s, stream: stream, subj: s.subject(stream), expected: int64(len(before)), evs: evs, nonce: "lost" + strconv.Itoa(n)}
		h, err := s.readHead(ctx, a.subj)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := a.messages(h)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.publish(ctx, msgs, "first", s.opts.RequestTimeout); err != nil {
			t.Fatalf("first attempt: %v", err)
		}
		a.remember(h.seq) // its answer "was lost"
		recovered := s.recovered.Load()
		v, err := a.run(ctx)
		if err != nil || v != uint64(len(before)+n) {
			t.Fatalf("append after a lost answer: version %d, %v; want %d", v, err, len(before)+n)
		}
		if s.recovered.Load() != recovered+1 {
			t.Fatal("the append did not find its earlier attempt")
		}
		// The same messages again (a late retry): refused or deduplicated.
		msgs, _ = a.messages(h)
		err = s.publish(ctx, msgs, "second", s.opts.RequestTimeout)
		var apiErr *jsapi.APIError
		if !errors.Is(err, errDuplicate) && !(errors.As(err, &apiErr) && (apiErr.ErrorCode == codeBatchDuplicate || apiErr.ErrorCode == codeWrongLastSeq)) {
			t.Fatalf("publishing an append again: %v, want a duplicate or wrong-last-sequence refusal", err)
		}
		after, err := s.ReadStream(ctx, stream, 1)
		if err != nil || len(after) != len(before)+n {
			t.Fatalf("stream holds %d events (%v), want %d", len(after), err, len(before)+n)
		}
	}
	if _, err := eventstore.Verify(ctx, s, nil); err != nil {
		t.Fatal(err)
	}
}

// TestBatchIsAtomic checks that a refused batch stores none of its events.
func TestBatchIsAtomic(t *testing.T) {
	srv := startServer(t, "atomic", t.TempDir(), 0, nil)
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, clientURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(ctx, "x", eventstore.NoStream, storetest.Event(0)); err != nil {
		t.Fatal(err)
	}
	a := &appendOp{s: s, stream: "x", subj: s.subject("x"), expected: eventstore.Any,
		evs: []eventstore.EventData{storetest.Event(1), storetest.Event(2), storetest.Event(3)}, nonce: "stale"}
	msgs, err := a.messages(head{}) // expects an empty stream: stale
	if err != nil {
		t.Fatal(err)
	}
	var apiErr *jsapi.APIError
	if err := s.publish(ctx, msgs, "b", s.opts.RequestTimeout); !errors.As(err, &apiErr) || apiErr.ErrorCode != codeWrongLastSeq {
		t.Fatalf("batch against a stale head: %v, want wrong last sequence", err)
	}
	all, err := s.ReadAll(ctx, 1, 10)
	if err != nil || len(all) != 1 {
		t.Fatalf("log holds %d events (%v) after a refused batch, want 1", len(all), err)
	}
	big := make([]eventstore.EventData, MaxBatch+1)
	for i := range big {
		big[i] = storetest.Event(i)
	}
	if _, err := s.Append(ctx, "x", eventstore.Any, big...); !errors.Is(err, eventstore.ErrInvalidEvent) || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("append of %d events: %v, want ErrInvalidEvent", MaxBatch+1, err)
	}
}

// TestCopyIntoJetStream imports a log whose one stream holds more
// consecutive events than a JetStream batch may: Copy splits the runs.
func TestCopyIntoJetStream(t *testing.T) {
	srv := startServer(t, "copy", t.TempDir(), 0, nil)
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	src := memstore.New()
	defer src.Close()
	for i := 0; i < 12; i++ {
		evs := make([]eventstore.EventData, 100)
		for j := range evs {
			evs[j] = storetest.Event(i*100 + j)
		}
		if _, err := src.Append(ctx, "long", eventstore.Any, evs...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.Append(ctx, "other", eventstore.NoStream, storetest.Event(5000)); err != nil {
		t.Fatal(err)
	}
	dst, err := Open(ctx, clientURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if err := eventstore.Copy(ctx, dst, src, nil); err != nil {
		t.Fatalf("Copy: %v", err)
	}
	rep, err := eventstore.Verify(ctx, dst, nil)
	if err != nil || rep.Records != 1201 || rep.Streams != 2 {
		t.Fatalf("Verify after Copy: %+v, %v", rep, err)
	}
	want, _ := src.ReadStream(ctx, "long", 1)
	got, err := dst.ReadStream(ctx, "long", 1)
	if err != nil || len(got) != len(want) || got[1199].PrevHash != want[1199].PrevHash {
		t.Fatalf("ReadStream after Copy: %d records, %v", len(got), err)
	}
}
