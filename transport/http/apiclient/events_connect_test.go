package apiclient

import (
	"context"
	"net"
	"testing"
	"time"
)

// Events returns the error of a first connection that fails instead of
// retrying forever: nothing listens there, so nothing will ever stream.
func TestEventsNeverConnectedGivesUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := New("http://"+addr, "tok")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.Events(ctx, 0, func(Event) error { return nil })
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Events = %v (ctx %v), want the connection error at once", err, ctx.Err())
	}
}
