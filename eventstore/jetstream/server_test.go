package jetstream

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startServer runs an embedded nats-server with JetStream on a random
// loopback port, its store in dir. With routes or a clusterPort, it is a member
// of a cluster on clusterPort (-1: any) routing to those URLs.
func startServer(t *testing.T, name, dir string, clusterPort int, routes []*url.URL) *server.Server {
	t.Helper()
	o := &server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
		// Keep JetStream's memory and disk reservations small: several of
		// these run in one test process.
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  1 << 30,
	}
	if routes != nil || clusterPort != 0 {
		o.Cluster = server.ClusterOpts{Name: "e4c2-test", Host: "127.0.0.1", Port: clusterPort}
		o.Routes = routes
	}
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("nats-server %s: %v", name, err)
	}
	go s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		s.Shutdown()
		t.Fatalf("nats-server %s did not start", name)
	}
	return s
}

// uniqName returns a JetStream stream name no other test uses.
func uniqName(prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + strings.ToUpper(hex.EncodeToString(b[:]))
}

func clientURL(s *server.Server) string { return s.ClientURL() }
