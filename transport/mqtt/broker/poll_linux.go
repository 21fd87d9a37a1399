//go:build linux

package broker

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
)

// poller watches idle device connections with an epoll instance of its
// own, so that an idle device costs no goroutine at all (a goroutine
// blocked in a read keeps at least a 4 KiB stack: the runtime only
// halves a stack when the used part plus 800 bytes of guard fits in a
// quarter of it). One goroutine waits in epoll_wait; a connection that
// becomes readable gets a goroutine for as long as it has packets, then
// is armed again (EPOLLONESHOT: one event per arming).
//
// Go's own poller keeps the descriptor registered (edge-triggered) in its
// epoll instance: the two do not interfere. Reads and writes still go
// through the net.Conn. A descriptor is removed from this epoll instance
// inside RawConn.Control, which holds it open, before the connection is
// closed, so a recycled descriptor number never reaches a stale session.
type poller struct {
	epfd   int
	wakeR  *os.File // the loop's stop signal
	wakeW  *os.File
	mu     sync.Mutex
	byTok  map[int32]*session
	next   int32
	done   chan struct{}
	closed bool
}

const pollEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

// newPoller starts the poller's loop.
func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("broker: epoll: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		_ = syscall.Close(epfd)
		return nil, fmt.Errorf("broker: epoll: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: -1}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, int(r.Fd()), &ev); err != nil {
		_ = syscall.Close(epfd)
		r.Close()
		w.Close()
		return nil, fmt.Errorf("broker: epoll: %w", err)
	}
	p := &poller{epfd: epfd, wakeR: r, wakeW: w, byTok: make(map[int32]*session), done: make(chan struct{})}
	go p.loop()
	return p, nil
}

// loop dispatches readiness to sessions until close.
func (p *poller) loop() {
	defer close(p.done)
	var evs [128]syscall.EpollEvent
	for {
		n, err := syscall.EpollWait(p.epfd, evs[:], -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return
		}
		for i := range n {
			if evs[i].Fd == -1 {
				return
			}
			p.mu.Lock()
			s := p.byTok[evs[i].Fd]
			p.mu.Unlock()
			if s != nil {
				s.ready()
			}
		}
	}
}

// assign gives s its token, before it is armed: whoever ends the session
// then finds the token to remove.
func (p *poller) assign(s *session) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrNotRunning
	}
	for {
		p.next++
		if p.next < 0 {
			p.next = 1
		}
		if _, used := p.byTok[p.next]; !used {
			break
		}
	}
	s.tok = p.next
	p.byTok[s.tok] = s
	return nil
}

// add arms s, which has its token, for its first event.
func (p *poller) add(s *session) error { return p.ctl(s, syscall.EPOLL_CTL_ADD) }

// arm re-arms s for its next event.
func (p *poller) arm(s *session) error { return p.ctl(s, syscall.EPOLL_CTL_MOD) }

// remove unregisters s; its connection is still open.
func (p *poller) remove(s *session) {
	p.mu.Lock()
	if s.tok != 0 && p.byTok[s.tok] == s {
		delete(p.byTok, s.tok)
	}
	p.mu.Unlock()
	_ = p.ctl(s, syscall.EPOLL_CTL_DEL)
}

func (p *poller) ctl(s *session, op int) error {
	var cerr error
	err := s.raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: pollEvents, Fd: s.tok}
		cerr = syscall.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("broker: epoll: %w", err)
	}
	return nil
}

// close stops the loop (the sessions are closed by then).
func (p *poller) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	_, _ = p.wakeW.Write([]byte{0})
	<-p.done
	_ = syscall.Close(p.epfd)
	p.wakeR.Close()
	p.wakeW.Close()
}

// size returns the number of registered sessions (for leak tests).
func (p *poller) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byTok)
}
