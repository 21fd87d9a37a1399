package server

import (
	"bufio"
	"context"
	"fmt"
	"net"
	nethttp "net/http"
	"testing"
	"time"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/testwait"
)

// A request in flight when the server starts shutting down is answered with
// "Connection: close": a client never sends its next request on a kept-alive
// connection the server is about to close (which it would see as EOF).
func TestShutdownTurnsKeepAlivesOff(t *testing.T) {
	srv := startC2(t, resConfig(t.TempDir(), "standard", "sk", ""))
	token, _, err := srv.Service().CreateToken(opContext(t), resOrigin, "keepalive", domain.TokenOperator)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", srv.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"topic":"keepalive"}`
	// Headers now, the body after the shutdown began: the connection is
	// active, so Shutdown waits for this request instead of closing it.
	fmt.Fprintf(conn, "POST /api/v1/topics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", token, len(body))
	time.Sleep(100 * time.Millisecond) // let the server read the headers (nothing to wait on from outside)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	testwait.For(t, "the server to start shutting down", func() bool { return srv.httpSrv != nil && shuttingDown(srv) })
	if _, err := conn.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	resp, err := nethttp.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the in-flight request got no answer: %v", err)
	}
	resp.Body.Close()
	if !resp.Close {
		t.Fatalf("answer without Connection: close during shutdown (status %d, header %v)", resp.StatusCode, resp.Header)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// shuttingDown reports whether closeAll has begun (keep-alives are off from
// its first step).
func shuttingDown(s *Server) bool {
	return s.shutdownStarted.Load()
}
