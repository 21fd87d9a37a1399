package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestRedactStoreURL(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/e4c2/e4c2.db":                            "/var/lib/e4c2/e4c2.db",
		"esdb://admin:changeit@db:2113?tls=false":          "esdb://admin:xxxxx@db:2113?tls=false",
		"nats://u:p1@a:4222,nats://u:p2@b:4222":            "nats://u:xxxxx@a:4222,nats://u:xxxxx@b:4222",
		"nats://s3cr3ttoken@a:4222":                        "nats://xxxxx@a:4222",
		"open esdb://admin:s3cr3t@h:1: connection refused": "open esdb://admin:xxxxx@h:1: connection refused",
		// Go's URL parser (and so the store clients) takes the last '@'
		// of the authority: a password or token may hold '@' itself.
		"esdb://admin:p@ss@db:2113?tls=false":     "esdb://admin:xxxxx@db:2113?tls=false",
		"nats://u:p@1@a:4222,nats://u:p@2@b:4222": "nats://u:xxxxx@a:4222,nats://u:xxxxx@b:4222",
		"nats://s3cr@ttoken@a:4222":               "nats://xxxxx@a:4222",
		"connect nats://u:a@b@h:1: i/o timeout":   "connect nats://u:xxxxx@h:1: i/o timeout",
	} {
		if got := RedactStoreURL(in); got != want {
			t.Errorf("RedactStoreURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactedErrorKeepsTheChain(t *testing.T) {
	base := errors.New("dial esdb://admin:s3cr3t@h:1 refused")
	err := fmt.Errorf("eventstoredb: %w", RedactedError{Err: base})
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("password in %q", err)
	}
	if !errors.Is(err, base) {
		t.Fatal("the chain is lost")
	}
}
