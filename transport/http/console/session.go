package console

import (
	"crypto/sha256"
	"sync"
	"time"

	httpapi "github.com/e4c2/e4c2/transport/http"
)

// cookieName is the session cookie (Path=/ui/).
const cookieName = "e4c2_session"

// loginCookie carries the CSRF token of the login form (double submit:
// there is no session yet to keep it in).
const loginCookie = "e4c2_login"

// session is one logged-in browser. The server keeps the SHA-256 of the
// session id (the map key) and of the API token, never either in clear.
type session struct {
	tokenHash [32]byte
	tokenName string
	role      httpapi.Role
	csrf      string
	created   time.Time
	lastUsed  time.Time
	flash     string // shown once on the next page
	flashErr  bool
}

// view is what a handler sees of its session.
type view struct {
	key       [32]byte
	tokenHash [32]byte // the token's, which the live streams are counted by
	TokenName string
	Role      httpapi.Role
	CSRF      string
	ReadOnly  bool // the server is read-only: no change is offered
}

// rank orders roles (admin > operator > reader).
func rank(r httpapi.Role) int {
	switch r {
	case httpapi.RoleAdmin:
		return 3
	case httpapi.RoleOperator:
		return 2
	case httpapi.RoleReader:
		return 1
	}
	return 0
}

// CanOperate says the role may change key state.
func (v view) CanOperate() bool { return !v.ReadOnly && rank(v.Role) >= rank(httpapi.RoleOperator) }

// IsAdmin says the role may see the tokens.
func (v view) IsAdmin() bool { return v.Role == httpapi.RoleAdmin }

// CanManageTokens says the session may create and revoke tokens.
func (v view) CanManageTokens() bool { return !v.ReadOnly && v.IsAdmin() }

// maxSessions bounds the sessions kept at once; the oldest go first.
// maxSessionsPerToken bounds those of one token, so that one token
// logging in again and again ends its own oldest sessions, not others'.
const (
	maxSessions         = 10000
	maxSessionsPerToken = 100
)

type sessionStore struct {
	mu   sync.Mutex
	ttl  time.Duration
	idle time.Duration
	now  func() time.Time
	m    map[[32]byte]*session
}

func newSessionStore(ttl, idle time.Duration, now func() time.Time) *sessionStore {
	return &sessionStore{ttl: ttl, idle: idle, now: now, m: map[[32]byte]*session{}}
}

// create starts a session for a token and returns the cookie value.
func (s *sessionStore) create(tokenHash [32]byte, name string, role httpapi.Role) string {
	id := randomToken()
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limitToken(tokenHash, now)
	if len(s.m) >= maxSessions {
		s.prune(now)
	}
	s.m[sha256.Sum256([]byte(id))] = &session{tokenHash: tokenHash, tokenName: name, role: role,
		csrf: randomToken(), created: now, lastUsed: now}
	return id
}

// limitToken makes room for one more session of a token: its expired
// sessions end and, at maxSessionsPerToken, its oldest one.
func (s *sessionStore) limitToken(h [32]byte, now time.Time) {
	n := 0
	var oldestKey [32]byte
	var oldest time.Time
	for k, v := range s.m {
		if v.tokenHash != h {
			continue
		}
		if s.expired(v, now) {
			delete(s.m, k)
			continue
		}
		n++
		if oldest.IsZero() || v.created.Before(oldest) {
			oldest, oldestKey = v.created, k
		}
	}
	if n >= maxSessionsPerToken {
		delete(s.m, oldestKey)
	}
}

// prune drops expired sessions, then the oldest until there is room.
func (s *sessionStore) prune(now time.Time) {
	var oldestKey [32]byte
	var oldest time.Time
	for k, v := range s.m {
		if s.expired(v, now) {
			delete(s.m, k)
			continue
		}
		if oldest.IsZero() || v.created.Before(oldest) {
			oldest, oldestKey = v.created, k
		}
	}
	if len(s.m) >= maxSessions {
		delete(s.m, oldestKey)
	}
}

func (s *sessionStore) expired(v *session, now time.Time) bool {
	return now.Sub(v.created) >= s.ttl || now.Sub(v.lastUsed) >= s.idle
}

// get returns the live session of a cookie value and the token hash to
// check, touching it.
func (s *sessionStore) get(id string) (*session, [32]byte, bool) {
	key := sha256.Sum256([]byte(id))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return nil, key, false
	}
	if s.expired(v, now) {
		delete(s.m, key)
		return nil, key, false
	}
	v.lastUsed = now
	cp := *v
	return &cp, key, true
}

// setRole refreshes the role from the token (it cannot change today, but
// the token is the authority, not the session).
func (s *sessionStore) setRole(key [32]byte, role httpapi.Role) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[key]; ok {
		v.role = role
	}
}

func (s *sessionStore) remove(key [32]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

// setFlash keeps a message for the next page of the session.
func (s *sessionStore) setFlash(key [32]byte, msg string, isErr bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[key]; ok {
		v.flash, v.flashErr = msg, isErr
	}
}

// takeFlash returns and clears the session's message.
func (s *sessionStore) takeFlash(key [32]byte) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return "", false
	}
	msg, isErr := v.flash, v.flashErr
	v.flash, v.flashErr = "", false
	return msg, isErr
}
