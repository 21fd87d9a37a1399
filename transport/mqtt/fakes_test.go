package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e4c2/e4c2/internal/testwait"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// fakeSource is an in-memory delivery queue with a durable-like log: it
// outlives workers, so a second worker over the same source is a restarted
// C2. Payloads are "<hex client>:<seq>:<ref>" so a subscriber can check
// order.
type fakeSource struct {
	mu      sync.Mutex
	items   []Item
	payload map[uint64]string
	state   map[uint64]string // seq -> "delivered" | "failed: reason"
	log     []string          // outcome records, in order
	builds  map[uint64]int
	seq     uint64
	nDeliv  int
	changed chan struct{}

	// hooks, all optional
	buildErr     func(it Item, n int) error // n: 1-based build count of it
	deliveredErr func(it Item) error
	onDelivered  func(n int) // after the n-th delivered record
}

func newFakeSource() *fakeSource {
	return &fakeSource{
		payload: map[uint64]string{}, state: map[uint64]string{},
		builds: map[uint64]int{}, changed: make(chan struct{}, 1),
	}
}

func clientID(i int) [16]byte {
	var id [16]byte
	id[0] = 0xe4
	id[15] = byte(i)
	id[14] = byte(i >> 8)
	return id
}

// enqueue queues one command to client i.
func (s *fakeSource) enqueue(i int) Item {
	s.mu.Lock()
	s.seq += 1 + uint64(len(s.items)%3) // gaps are allowed: Seq is a position, not a count
	it := Item{ClientID: clientID(i), Seq: s.seq, Ref: "ev-" + strconv.FormatUint(s.seq, 10)}
	s.items = append(s.items, it)
	s.payload[it.Seq] = fmt.Sprintf("%x:%d:%s", it.ClientID, it.Seq, it.Ref)
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return it
}

func (s *fakeSource) Pending(ctx context.Context, after uint64, limit int) ([]Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Item
	start := sort.Search(len(s.items), func(i int) bool { return s.items[i].Seq > after })
	for _, it := range s.items[start:] {
		if s.state[it.Seq] == "" {
			out = append(out, it)
			if len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

func (s *fakeSource) Changed() <-chan struct{} { return s.changed }

func (s *fakeSource) Build(ctx context.Context, it Item, now time.Time) ([]byte, error) {
	s.mu.Lock()
	s.builds[it.Seq]++
	n := s.builds[it.Seq]
	p := s.payload[it.Seq]
	f := s.buildErr
	s.mu.Unlock()
	if f != nil {
		if err := f(it, n); err != nil {
			return nil, err
		}
	}
	return []byte(p), nil
}

func (s *fakeSource) PendingFor(ctx context.Context, client [16]byte) ([]Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Item
	for _, it := range s.items {
		if it.ClientID == client && s.state[it.Seq] == "" {
			out = append(out, it)
		}
	}
	return out, nil
}

func (s *fakeSource) Delivered(ctx context.Context, it Item, ev Evidence) error {
	if s.deliveredErr != nil {
		if err := s.deliveredErr(it); err != nil {
			return err
		}
	}
	s.mu.Lock()
	if s.state[it.Seq] == "" {
		s.state[it.Seq] = "delivered"
		if ev == Confirmed {
			s.state[it.Seq] = "delivered confirmed"
		}
		s.nDeliv++
	}
	s.log = append(s.log, "delivered "+it.Ref)
	n := s.nDeliv
	f := s.onDelivered
	s.mu.Unlock()
	if f != nil {
		f(n)
	}
	return nil
}

func (s *fakeSource) Failed(ctx context.Context, it Item, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state[it.Seq] == "" {
		s.state[it.Seq] = "failed: " + reason
	}
	s.log = append(s.log, "failed "+it.Ref)
	return nil
}

func (s *fakeSource) count(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.state {
		if strings.HasPrefix(v, prefix) {
			n++
		}
	}
	return n
}

func (s *fakeSource) stateOf(seq uint64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state[seq]
}

func (s *fakeSource) buildCount(seq uint64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.builds[seq]
}

// fakePublisher records publishes and checks the per-client FIFO and the
// window as they happen.
type fakePublisher struct {
	mu          sync.Mutex
	connected   bool
	window      int
	inflight    int
	maxInflight int
	perClient   map[string]int // in-flight publishes per topic
	violations  []string
	got         []string // payloads confirmed, in confirmation order
	delay       time.Duration
	fail        func(payload string) error
	block       chan struct{} // if set, Publish waits for it (or ctx)
	started     chan struct{} // if set, signalled when a publish starts
}

func newFakePublisher(window int) *fakePublisher {
	return &fakePublisher{connected: true, window: window, perClient: map[string]int{}}
}

func (p *fakePublisher) Publish(ctx context.Context, topic string, payload []byte) error {
	p.mu.Lock()
	if !p.connected {
		p.mu.Unlock()
		return ErrUnavailable
	}
	p.inflight++
	p.maxInflight = max(p.maxInflight, p.inflight)
	if p.inflight > p.window {
		p.violations = append(p.violations, fmt.Sprintf("in flight %d > window %d", p.inflight, p.window))
	}
	p.perClient[topic]++
	if p.perClient[topic] > 1 {
		p.violations = append(p.violations, "two in flight to "+topic)
	}
	if !strings.HasPrefix(string(payload), strings.TrimPrefix(topic, "e4/")) {
		p.violations = append(p.violations, fmt.Sprintf("payload %q on topic %s", payload, topic))
	}
	delay, fail, block, started := p.delay, p.fail, p.block, p.started
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inflight--
		p.perClient[topic]--
		p.mu.Unlock()
	}()
	if started != nil {
		select {
		case started <- struct{}{}:
		default:
		}
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	if fail != nil {
		if err := fail(string(payload)); err != nil {
			return err
		}
	}
	p.mu.Lock()
	p.got = append(p.got, string(payload))
	p.mu.Unlock()
	return nil
}

func (p *fakePublisher) Connected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.connected
}

func (p *fakePublisher) setConnected(v bool) {
	p.mu.Lock()
	p.connected = v
	p.mu.Unlock()
}

func (p *fakePublisher) SafeWindow() int { return p.window }

func (p *fakePublisher) snapshot() (got, violations []string, maxInflight int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got...), append([]string(nil), p.violations...), p.maxInflight
}

// checkOrder verifies that msgs (payloads as built by fakeSource) hold, for
// every client, non-decreasing seqs (a duplicate may repeat the last one:
// at least once) and, if want is set, exactly the seqs of want.
func checkOrder(t *testing.T, msgs []string, want []Item) {
	t.Helper()
	last := map[string]uint64{}
	seen := map[uint64]bool{}
	for _, m := range msgs {
		parts := strings.SplitN(m, ":", 3)
		if len(parts) != 3 {
			t.Fatalf("malformed payload %q", m)
		}
		seq, err := strconv.ParseUint(parts[1], 10, 64)
		if err != nil {
			t.Fatalf("payload %q: %v", m, err)
		}
		if seq < last[parts[0]] {
			t.Fatalf("client %s: seq %d after %d (out of order)", parts[0], seq, last[parts[0]])
		}
		last[parts[0]] = seq
		seen[seq] = true
	}
	if want != nil {
		for _, it := range want {
			if !seen[it.Seq] {
				t.Fatalf("seq %d (%s) never received; got %d messages", it.Seq, it.Ref, len(msgs))
			}
		}
		if len(seen) != len(want) {
			t.Fatalf("received %d distinct seqs, want %d", len(seen), len(want))
		}
	}
}

// waitFor is kept only for worker_test.go, which another change is
// rewriting at the same time; it waits like testwait.For (the tree's one
// bound for positive waits: a per-call bound of a few seconds flaked on a
// loaded machine), so the timeout argument is not used. Call testwait.For
// in new code; this goes when worker_test.go does.
func waitFor(t *testing.T, _ time.Duration, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, what, cond)
}

// runWorker starts w and returns a function that stops it (hard) and
// returns Run's error.
func runWorker(t *testing.T, w *Worker) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(10 * time.Second):
				err = errors.New("worker did not stop")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}
