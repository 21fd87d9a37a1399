package c2

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/eventcodec"
)

// keyUseFlushEvery is how often the counts of minutes that are over are
// written (key.used.v1): a use is in the log at most a minute and this
// long after it happened, and Close writes what is left.
const keyUseFlushEvery = 5 * time.Second

// keyUseKey is what one key.used.v1 aggregates over: who, which key, when.
type keyUseKey struct {
	actor      string
	topic      domain.ID
	keyVersion uint64
	minute     int64
}

type keyUseCount struct{ protects, unprotects, failures uint64 }

// keyUseLog aggregates the helpers' uses of topic keys. The first use of
// a (actor, topic, key version, minute) is appended before the helper
// answers; the further uses of that minute are counted here and appended
// as one more event when the minute is over (by a ticker started on first
// use) or at Close. At most two events per actor, key and minute, however
// many messages.
type keyUseLog struct {
	mu      sync.Mutex
	opened  map[keyUseKey]bool         // minutes whose first use is recorded
	pending map[keyUseKey]*keyUseCount // uses since then, not yet recorded
	stop    chan struct{}              // nil until the ticker runs
	wg      sync.WaitGroup
	closed  bool
}

type keyUseKind int

const (
	useProtect keyUseKind = iota
	useUnprotect
)

// recordKeyUse accounts for one use of a topic key by o. It returns an
// error only when the use had to be recorded now (the first of its
// minute) and could not be: the helper must then refuse.
func (s *Service) recordKeyUse(ctx context.Context, o Origin, topic domain.ID, keyVersion uint64, kind keyUseKind) error {
	l := &s.keyUse
	now := s.clock()
	k := keyUseKey{actor: actorOf(o), topic: topic, keyVersion: keyVersion, minute: now.Truncate(time.Minute).Unix()}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	if l.opened == nil {
		l.opened, l.pending = map[keyUseKey]bool{}, map[keyUseKey]*keyUseCount{}
	}
	if l.opened[k] {
		c := l.pending[k]
		if c == nil {
			c = &keyUseCount{}
			l.pending[k] = c
		}
		c.add(kind)
		l.mu.Unlock()
		return nil
	}
	l.opened[k] = true
	if l.stop == nil {
		l.stop = make(chan struct{})
		l.wg.Add(1)
		go s.keyUseLoop(l.stop)
	}
	l.mu.Unlock()
	var first keyUseCount
	first.add(kind)
	if err := s.appendKeyUse(ctx, o, k, first); err != nil {
		l.mu.Lock()
		delete(l.opened, k)
		l.mu.Unlock()
		return fmt.Errorf("c2: record key use: %w", err)
	}
	return nil
}

// recordKeyUseFailure counts an unprotect that did not open. It is counted
// with the minute's other uses (its use was recorded before the attempt).
func (s *Service) recordKeyUseFailure(o Origin, topic domain.ID, keyVersion uint64) {
	l := &s.keyUse
	k := keyUseKey{actor: actorOf(o), topic: topic, keyVersion: keyVersion, minute: s.clock().Truncate(time.Minute).Unix()}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.pending == nil {
		return
	}
	c := l.pending[k]
	if c == nil {
		c = &keyUseCount{}
		l.pending[k] = c
	}
	c.failures++
	l.opened[k] = true
}

// actorOf is the actor meta records for o.
func actorOf(o Origin) string {
	if o.Actor == "" {
		return "system"
	}
	return o.Actor
}

func (c *keyUseCount) add(kind keyUseKind) {
	if kind == useProtect {
		c.protects++
	} else {
		c.unprotects++
	}
}

func (s *Service) appendKeyUse(ctx context.Context, o Origin, k keyUseKey, c keyUseCount) error {
	ev := &domain.KeyUsed{Topic: k.topic, KeyVersion: k.keyVersion, Minute: uint64(k.minute),
		Protects: c.protects, Unprotects: c.unprotects, Failures: c.failures}
	o.Actor = k.actor
	d := domain.Decision{Stream: domain.KeyUseStream, Expected: eventstore.Any, Events: []domain.Event{ev}}
	evs, err := eventcodec.EncodeDecision(d, s.sealer, s.meta(o), s.newID)
	if err != nil {
		return err
	}
	_, err = s.store.Append(ctx, d.Stream, d.Expected, evs...)
	return err
}

func (s *Service) keyUseLoop(stop <-chan struct{}) {
	defer s.keyUse.wg.Done()
	t := time.NewTicker(keyUseFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.flushKeyUse(false)
		case <-stop:
			return
		}
	}
}

// flushKeyUse appends the counts of the minutes that are over (all of them
// when all) and forgets those minutes. A count that cannot be written is
// kept for the next flush.
func (s *Service) flushKeyUse(all bool) {
	l := &s.keyUse
	current := s.clock().Truncate(time.Minute).Unix()
	l.mu.Lock()
	due := map[keyUseKey]keyUseCount{}
	for k, c := range l.pending {
		if all || k.minute < current {
			due[k] = *c
			delete(l.pending, k)
		}
	}
	for k := range l.opened {
		if all || k.minute < current {
			if _, waiting := l.pending[k]; !waiting {
				delete(l.opened, k)
			}
		}
	}
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for k, c := range due {
		if err := s.appendKeyUse(ctx, Origin{}, k, c); err != nil {
			// Kept for the next flush (lost only if Close cannot
			// write it either).
			l.mu.Lock()
			if p := l.pending[k]; p != nil {
				p.protects += c.protects
				p.unprotects += c.unprotects
				p.failures += c.failures
			} else {
				cc := c
				l.pending[k] = &cc
			}
			l.opened[k] = true
			l.mu.Unlock()
		}
	}
}

// closeKeyUse stops the ticker and writes every count still held. Called
// by Close before the service refuses work.
func (s *Service) closeKeyUse() {
	l := &s.keyUse
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	stop := l.stop
	l.mu.Unlock()
	if stop != nil {
		close(stop)
		l.wg.Wait()
	}
	s.flushKeyUse(true)
}
