package jetstream

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/e4c2/e4c2/eventstore"
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
