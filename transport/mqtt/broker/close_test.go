package broker

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
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

// The listener hands no connection to mochi once Close has begun, and its
// Close waits for the hand-offs already running: mochi's Close waits on
// its clients' WaitGroup right after closing the listeners, and a
// hand-off starting during that wait reuses the WaitGroup (a race, and a
// panic of sync, once in CI).
func TestListenerCloseFencesHandoffs(t *testing.T) {
	l := NewListener(ListenerConfig{Address: "127.0.0.1:0"})
	if err := l.Init(nil); err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	var ended atomic.Bool
	establish := l.guard(func(string, net.Conn) error {
		calls.Add(1)
		close(started)
		<-release // a client attached until its connection ends
		time.Sleep(50 * time.Millisecond)
		ended.Store(true)
		return nil
	})
	a, b := net.Pipe()
	defer b.Close()
	go func() { _ = establish("tcp", a) }()
	<-started

	closed := make(chan struct{})
	go func() {
		l.Close(func(string) { close(release) }) // mochi's closeClients ends the client
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(handoffWait + 5*time.Second):
		t.Fatal("Close did not return")
	}
	if !ended.Load() {
		t.Fatal("Close returned before the hand-off in flight ended")
	}

	c, d := net.Pipe()
	defer d.Close()
	if err := establish("tcp", c); !errors.Is(err, errListenerClosed) {
		t.Fatalf("a hand-off after Close: %v, want errListenerClosed", err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("mochi's establish ran %d times, want 1 (none after Close)", n)
	}
}
