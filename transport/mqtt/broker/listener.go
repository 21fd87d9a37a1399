package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// Accept back-off bounds, as in net/http's Server.Serve: a temporary accept
// error (EMFILE, ENFILE, ECONNABORTED...) is retried after 5ms, doubling up
// to 1s, and the delay resets after a successful accept.
const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

// DefaultMaxConns returns the default cap on concurrent connections:
// min(10000, RLIMIT_NOFILE-256), and at least 16. The 256 descriptors kept
// aside leave room for the event store, log files and outgoing connections,
// so that the broker refusing a connection happens before the process as a
// whole runs out of descriptors.
func DefaultMaxConns() int {
	limit, ok := openFileLimit()
	if !ok {
		return 1024
	}
	n := uint64(10000)
	if limit > 256 && limit-256 < n {
		n = limit - 256
	} else if limit <= 256 {
		n = 16
	}
	if n < 16 {
		n = 16
	}
	return int(n)
}

// Listener is a TCP (or TLS) listener for mochi that survives accept errors
// and caps concurrent connections. It implements listeners.Listener.
type Listener struct {
	id       string
	address  string
	tls      *tls.Config
	maxConns int
	wrap     func(net.Listener) net.Listener
	closeCl  func(id string)
	front    func(id string, c net.Conn, establish listeners.EstablishFn) error
	log      *slog.Logger

	mu     sync.Mutex
	ln     net.Listener
	closed atomic.Bool

	// handoffs counts the connections being handed to mochi (establish
	// running); hmu orders that count with closed. See guard.
	hmu      sync.Mutex
	handoffs sync.WaitGroup

	active   atomic.Int64
	refused  atomic.Uint64
	accErrs  atomic.Uint64
	accepted atomic.Uint64
}

var _ listeners.Listener = (*Listener)(nil)

// ListenerConfig configures a Listener.
type ListenerConfig struct {
	ID      string      // mochi listener id, e.g. "tcp"
	Address string      // host:port to bind, e.g. "127.0.0.1:1883" or "127.0.0.1:0"
	TLS     *tls.Config // if set, connections are TLS
	// MaxConns caps concurrent connections; extra ones are closed at once.
	// 0 means DefaultMaxConns().
	MaxConns int
	// Wrap, if set, wraps the bound net.Listener (before TLS). It exists
	// for fault injection in tests (e.g. an Accept that fails with EMFILE).
	Wrap func(net.Listener) net.Listener
	// CloseClients, if set, closes the listener's clients on Close instead
	// of the function mochi passes. mochi v2.7.9's (closeListenerClients,
	// through Clients.GetByListener) read-locks the client table twice in
	// a row; a client removing itself between the two (a clean session
	// ending, as every client does when the broker closes) queues a write
	// lock that blocks the second read lock, and the broker hangs for
	// good.
	CloseClients func(id string)
	// Front, if set, serves each accepted connection instead of handing
	// it to mochi directly: it reads the CONNECT and keeps device
	// connections for the broker's front end (front.go), passing the
	// others on to establish.
	Front func(id string, c net.Conn, establish listeners.EstablishFn) error
}

// NewListener returns a Listener; it binds in Init.
func NewListener(cfg ListenerConfig) *Listener {
	if cfg.ID == "" {
		cfg.ID = "tcp"
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns()
	}
	return &Listener{id: cfg.ID, address: cfg.Address, tls: cfg.TLS, maxConns: cfg.MaxConns, wrap: cfg.Wrap, closeCl: cfg.CloseClients, front: cfg.Front}
}

// ID returns the mochi listener id.
func (l *Listener) ID() string { return l.id }

// Protocol returns "tcp".
func (l *Listener) Protocol() string { return "tcp" }

// Address returns the bound address once Init has run (with the real port
// when the configured port was 0), else the configured one.
func (l *Listener) Address() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.address
}

// Init binds the address.
func (l *Listener) Init(log *slog.Logger) error {
	l.log = log
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", l.address)
	if err != nil {
		return fmt.Errorf("broker: listen %s: %w", l.address, err)
	}
	if l.wrap != nil {
		ln = l.wrap(ln)
	}
	if l.tls != nil {
		ln = tls.NewListener(ln, l.tls)
	}
	l.mu.Lock()
	l.ln = ln
	l.mu.Unlock()
	return nil
}

// Serve accepts connections until Close, handing each to establish. An
// accept error other than "listener closed" is treated as temporary: the loop
// sleeps (5ms doubling to 1s) and tries again, so a spell of EMFILE degrades
// service instead of ending it.
func (l *Listener) Serve(establish listeners.EstablishFn) {
	l.mu.Lock()
	ln := l.ln
	l.mu.Unlock()
	if ln == nil {
		return
	}
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			l.accErrs.Add(1)
			if delay == 0 {
				delay = minAcceptBackoff
			} else {
				delay *= 2
			}
			if delay > maxAcceptBackoff {
				delay = maxAcceptBackoff
			}
			l.log.Warn("broker: accept failed; retrying", "error", err, "delay", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		if l.closed.Load() {
			_ = conn.Close()
			return
		}
		if l.active.Add(1) > int64(l.maxConns) {
			// Refuse by closing: accepting and closing at once frees the
			// descriptor and tells the client to back off, where leaving
			// it in the backlog would keep it hanging.
			l.active.Add(-1)
			l.refused.Add(1)
			_ = conn.Close()
			continue
		}
		l.accepted.Add(1)
		c := &countedConn{Conn: conn, l: l}
		establish := l.guard(establish)
		go func() {
			if l.front != nil {
				// The front end closes c when it is done with it (a
				// device session outlives this goroutine).
				if err := l.front(l.id, c, establish); err != nil {
					l.log.Debug("broker: connection ended", "error", err)
				}
				return
			}
			if err := establish(l.id, c); err != nil {
				l.log.Debug("broker: connection ended", "error", err)
			}
			// mochi closes the connection when the client stops; closing
			// again is harmless and makes sure the slot is released.
			_ = c.Close()
		}()
	}
}

// errListenerClosed refuses a connection whose hand-off to mochi would
// start after Close.
var errListenerClosed = errors.New("broker: listener closed")

// guard wraps establish so that no hand-off to mochi starts once Close has
// begun, and Close can wait for those already started. mochi counts its
// clients in a WaitGroup that its Close waits on after closing the
// listeners; a hand-off starting during that wait (a connection whose
// CONNECT the front end was still reading) is a WaitGroup reused during
// Wait: the race detector reported it and sync panicked, once in CI.
func (l *Listener) guard(establish listeners.EstablishFn) listeners.EstablishFn {
	return func(id string, c net.Conn) error {
		l.hmu.Lock()
		if l.closed.Load() {
			l.hmu.Unlock()
			_ = c.Close()
			return errListenerClosed
		}
		l.handoffs.Add(1)
		l.hmu.Unlock()
		defer l.handoffs.Done()
		return establish(id, c)
	}
}

// handoffWait bounds Close's wait for the hand-offs in flight: each has
// registered with mochi within microseconds of its start, and one that
// closeClients missed (it registered just after) ends with its client.
const handoffWait = 2 * time.Second

// Close stops accepting and closes the listener's clients, then waits for
// the hand-offs to mochi in flight to end (at most handoffWait).
func (l *Listener) Close(closeClients listeners.CloseFn) {
	l.hmu.Lock()
	first := l.closed.CompareAndSwap(false, true)
	l.hmu.Unlock()
	if first {
		if l.closeCl != nil {
			l.closeCl(l.id)
		} else {
			closeClients(l.id)
		}
	}
	l.mu.Lock()
	ln := l.ln
	l.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	done := make(chan struct{})
	go func() {
		l.handoffs.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(handoffWait):
		l.log.Warn("broker: connections still being handed over at close")
	}
}

// ListenerStats are counters of a Listener.
type ListenerStats struct {
	Active       int64  // connections open now
	Accepted     uint64 // connections accepted and handed to the broker
	Refused      uint64 // connections closed at once because of MaxConns
	AcceptErrors uint64 // accept errors survived
}

// Stats returns the listener's counters.
func (l *Listener) Stats() ListenerStats {
	return ListenerStats{
		Active:       l.active.Load(),
		Accepted:     l.accepted.Load(),
		Refused:      l.refused.Load(),
		AcceptErrors: l.accErrs.Load(),
	}
}

// countedConn releases its connection slot exactly once when closed.
type countedConn struct {
	net.Conn
	l    *Listener
	once sync.Once
}

// rawConn returns the descriptor access of a plain TCP connection (nil
// for TLS or a test's wrapped connection), for the front end's poller.
func (c *countedConn) rawConn() syscall.RawConn {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		if rc, err := tc.SyscallConn(); err == nil {
			return rc
		}
	}
	return nil
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.active.Add(-1) })
	return err
}
