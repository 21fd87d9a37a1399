package console

import (
	"net"
	nethttp "net/http"
	"sync"
	"time"
)

// maxFailAddrs bounds the addresses remembered at once.
const maxFailAddrs = 1 << 16

// failLimiter counts failed logins per source address in fixed windows:
// the first failure opens a window; limit failures inside it block the
// address until it ends. A nil limiter limits nothing.
type failLimiter struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	now    func() time.Time
	addrs  map[string]*failWindow
}

type failWindow struct {
	start time.Time
	n     int
}

func newFailLimiter(limit int, window time.Duration, now func() time.Time) *failLimiter {
	return &failLimiter{limit: limit, window: window, now: now, addrs: map[string]*failWindow{}}
}

// blocked says whether ip used up its failures, and for how long.
func (l *failLimiter) blocked(ip string) (time.Duration, bool) {
	if l == nil {
		return 0, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.addrs[ip]
	if !ok {
		return 0, false
	}
	left := w.start.Add(l.window).Sub(l.now())
	if left <= 0 {
		delete(l.addrs, ip)
		return 0, false
	}
	return left, w.n >= l.limit
}

// fail records a failed login from ip.
func (l *failLimiter) fail(ip string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	w, ok := l.addrs[ip]
	if !ok || now.Sub(w.start) >= l.window {
		if !ok && len(l.addrs) >= maxFailAddrs {
			for k, v := range l.addrs {
				if now.Sub(v.start) >= l.window || len(l.addrs) >= maxFailAddrs {
					delete(l.addrs, k)
				}
			}
		}
		w = &failWindow{start: now}
		l.addrs[ip] = w
	}
	w.n++
}

// peerIP is the host part of the request's TCP peer (never a header the
// client writes).
func peerIP(r *nethttp.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
