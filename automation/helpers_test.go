package automation

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/boltstore"
	"github.com/e4c2/e4c2/eventstore/sealing"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites"
	"github.com/e4c2/e4c2/suites/core"
)

var t0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC) // a Monday

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

var operator = c2.Origin{Actor: "cli:test"}

// world is a C2 on a real boltstore file.
type world struct {
	t      testing.TB
	path   string
	store  *boltstore.Store
	sealer *sealing.Keyring
	svc    *c2.Service
	mode   core.Mode
	suite  core.Suite
	clock  *fakeClock
}

func newWorld(t testing.TB, mode core.Mode) *world {
	t.Helper()
	w := &world{t: t, path: filepath.Join(t.TempDir(), "c2.db"), mode: mode, clock: newClock()}
	s, err := suites.ByName("standard")
	if err != nil {
		t.Fatal(err)
	}
	w.suite = s
	w.open()
	return w
}

func (w *world) open() {
	t := w.t
	t.Helper()
	st, err := boltstore.Open(w.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	mk, err := sealing.MasterKeyFromBytes(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	kr, err := sealing.OpenKeyring(context.Background(), st, mk)
	if err != nil {
		t.Fatal(err)
	}
	w.store, w.sealer = st, kr
	w.svc = w.newService()
	t.Cleanup(w.close)
}

func (w *world) newService() *c2.Service {
	w.t.Helper()
	svc, err := c2.New(c2.Config{Store: w.store, Sealer: w.sealer, Suite: w.suite, Mode: w.mode})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { _ = svc.Close() })
	return svc
}

func (w *world) close() {
	if w.svc != nil {
		_ = w.svc.Close()
	}
	if w.store != nil {
		_ = w.store.Close()
	}
	w.svc, w.store = nil, nil
}

func (w *world) engine(cp projections.Checkpointer, name string) *Engine {
	return w.engineFor(w.svc, cp, name)
}

func (w *world) engineFor(svc *c2.Service, cp projections.Checkpointer, name string) *Engine {
	w.t.Helper()
	e, err := New(Config{Store: w.store, Service: svc, Clock: w.clock.Now, Checkpoints: cp,
		CheckpointName: name, TickInterval: -1, CheckpointEvery: time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

// run starts e.Run and returns a function that stops it and returns its
// error.
func run(t testing.TB, e *Engine) func() error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			err = <-done
			if errors.Is(err, context.Canceled) {
				err = nil
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// lastPos returns the position of the last record of the log.
func (w *world) lastPos() uint64 {
	w.t.Helper()
	p := uint64(0)
	for {
		recs, err := w.store.ReadAll(context.Background(), p+1, 4096)
		if err != nil {
			w.t.Fatal(err)
		}
		if len(recs) == 0 {
			return p
		}
		p = recs[len(recs)-1].Position
	}
}

// settle waits until every engine processed the whole log and the log
// stopped growing (fires append more events).
func (w *world) settle(es ...*Engine) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		p := w.lastPos()
		for _, e := range es {
			if err := e.WaitPosition(ctx, p); err != nil {
				w.t.Fatalf("engine did not reach %d: %v", p, err)
			}
		}
		if err := w.svc.WaitPosition(ctx, p); err != nil {
			w.t.Fatal(err)
		}
		if w.lastPos() == p {
			return
		}
	}
}

func (w *world) addClient(name string) {
	w.t.Helper()
	key, err := w.suite.GenerateKey()
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.svc.NewClient(context.Background(), operator, c2.ByName(name), key, domain.RoleBoth); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) addTopic(name string, clients ...string) {
	w.t.Helper()
	ctx := context.Background()
	if _, err := w.svc.NewTopic(ctx, operator, name); err != nil {
		w.t.Fatal(err)
	}
	for _, c := range clients {
		if _, err := w.svc.NewTopicClient(ctx, operator, c2.ByName(c), name); err != nil {
			w.t.Fatal(err)
		}
	}
}

func (w *world) topicVersion(name string) uint64 {
	w.t.Helper()
	ti, err := w.svc.Topic(name)
	if err != nil {
		w.t.Fatal(err)
	}
	return ti.KeyVersion
}

// ruleEvents returns the records of a rule stream of one type.
func (w *world) ruleEvents(id, typ string) []eventstore.Record {
	w.t.Helper()
	recs, err := w.store.ReadStream(context.Background(), Stream(id), 1)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []eventstore.Record
	for _, r := range recs {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

func (w *world) completions(id string) []completedEvent {
	w.t.Helper()
	var out []completedEvent
	for _, r := range w.ruleEvents(id, TypeRuleCompleted) {
		var c completedEvent
		if err := json.Unmarshal(r.Data, &c); err != nil {
			w.t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// audit returns the audit entries written by actor.
func (w *world) byActor(actor string) []projections.AuditEntry {
	w.t.Helper()
	es, _ := w.svc.Audit(projections.AuditQuery{Actor: actor, Limit: 10000})
	return es
}

func mustSpec(t testing.TB, js string) Spec {
	t.Helper()
	var s Spec
	if err := json.Unmarshal([]byte(js), &s); err != nil {
		t.Fatalf("spec %s: %v", js, err)
	}
	return s
}

// rotations counts the topic.key_rotated.v1 events of a topic.
func (w *world) rotations(topic string) int {
	w.t.Helper()
	recs, err := w.store.ReadStream(context.Background(), domain.TopicStream(domain.TopicHash(topic)), 1)
	if err != nil {
		w.t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Type == domain.TypeTopicKeyRotated.WireName() {
			n++
		}
	}
	return n
}

// eventOfType returns the id of the event of type typ an operation appended.
func (w *world) eventOfType(res c2.Result, typ string) string {
	w.t.Helper()
	recs, err := w.store.ReadStream(context.Background(), res.Stream, 1)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, r := range recs {
		for _, id := range res.EventIDs {
			if r.ID == id && r.Type == typ {
				return id
			}
		}
	}
	w.t.Fatalf("no %s among %v", typ, res.EventIDs)
	return ""
}

func byName(n string) c2.ClientRef { return c2.ByName(n) }
