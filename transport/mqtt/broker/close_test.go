package broker

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// Closing the broker while its clients leave must not hang. mochi's own
// listener-close path read-locks the client table twice in a row, and a
// client removing itself in between deadlocks it (see
// ListenerConfig.CloseClients). The window is narrow: this test exercises
// the path but seldom hits the race (it hung a full run of the Deliver
// tests once).
func TestCloseWhileClientsLeave(t *testing.T) {
	for round := range 5 {
		b := startBroker(t, Config{AllowAnonymous: true})
		var conns []*rawClient
		for i := range 200 {
			conns = append(conns, mustDial(t, b.Addr(), rawConnect{version: 4, clientID: fmt.Sprintf("c%d", i), clean: true}))
		}
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Go(func() { c.conn.Close() })
		}
		done := make(chan error, 1)
		go func() { done <- b.Close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: Close hung", round)
		}
		wg.Wait()
	}
}
