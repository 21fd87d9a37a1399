package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Config tunes a Worker. Zero values take the defaults shown.
type Config struct {
	// Window is the maximum number of unconfirmed publishes across
	// clients. 0: Publisher.SafeWindow(). Larger values are clamped to it.
	Window int
	// Prefetch is how many items the worker buffers from the Source
	// (default 4096). Fairness between clients holds within this buffer.
	Prefetch int
	// MaxAttempts: counted failed attempts after which an item is
	// recorded failed (default 10).
	MaxAttempts int
	// MaxAge bounds the time an item may keep failing while the broker is
	// reachable (default 10 minutes; outage time is not counted).
	MaxAge time.Duration
	// MinBackoff and MaxBackoff bound the exponential back-off between
	// counted attempts of one item (defaults 100ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds the wait for one confirmation (default 30s).
	AttemptTimeout time.Duration
	// PollInterval is how often the Source is polled besides its Changed
	// notifications (default 1s).
	PollInterval time.Duration
	// Now is the clock passed to Source.Build (default time.Now).
	Now func() time.Time
	// Metrics receives counters and gauges (default NopMetrics).
	Metrics Metrics
	// Logger receives warnings (default slog.Default()).
	Logger *slog.Logger
}

// Waits while the broker is unreachable: short at first so a blip costs
// little, capped so a long outage is noticed within a second of its end.
const (
	minUnavailableWait = 50 * time.Millisecond
	maxUnavailableWait = time.Second
)

func (c *Config) defaults(pub Publisher) {
	safe := pub.SafeWindow()
	if safe < 1 {
		safe = 1
	}
	if c.Window <= 0 || c.Window > safe {
		c.Window = safe
	}
	if c.Prefetch <= 0 {
		c.Prefetch = 4096
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 10 * time.Minute
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = 30 * time.Second
		if c.MaxBackoff < c.MinBackoff {
			c.MaxBackoff = c.MinBackoff
		}
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = 30 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Metrics == nil {
		c.Metrics = NopMetrics{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Stats is a snapshot of a Worker's counters.
type Stats struct {
	Published   uint64 // publish attempts
	Delivered   uint64 // items recorded delivered
	Retries     uint64 // counted failed attempts that were retried
	Failed      uint64 // items recorded failed
	Unavailable uint64 // waits for an unreachable broker
	Parked      uint64 // queues set aside because their device was offline
	QueueDepth  int    // items buffered now
	InFlight    int    // window slots in use now
}

// Worker delivers the items of a Source through a Publisher. Create it
// with NewWorker, run it with Run, stop it with Shutdown (graceful) or by
// cancelling Run's context (immediate).
type Worker struct {
	src    Source
	pub    Publisher
	devPub DevicePublisher // pub, when it sees device sessions; else nil
	cfg    Config

	wakeMu sync.Mutex
	woken  map[[16]byte]struct{} // devices reported online since the loop last looked
	wakeCh chan struct{}         // capacity 1: "woken is not empty"

	slots   chan struct{} // window semaphore: a send takes a slot
	results chan result
	stop    chan struct{} // closed by Shutdown
	done    chan struct{} // closed when Run returns
	once    sync.Once
	started atomic.Bool
	cancel  atomic.Pointer[context.CancelFunc]

	published, delivered, retries, failed, unavailable, parked atomic.Uint64
	depth, inflight                                            atomic.Int64
}

// outcome is how the delivery of one item ended.
type outcome uint8

const (
	abandoned outcome = iota // stopped: resent by the next run
	completed                // recorded delivered or failed: drop it from the queue
	offline                  // the device is offline: set its whole queue aside
)

type result struct {
	client  [16]byte
	outcome outcome
}

// phases counts the unsettled items of each Group by Phase.
type phases map[uint64]map[uint8]int

func (p phases) add(it Item, n int) {
	if it.Group == 0 {
		return
	}
	g := p[it.Group]
	if g == nil {
		g = make(map[uint8]int)
		p[it.Group] = g
	}
	g[it.Phase] += n
	if g[it.Phase] == 0 {
		delete(g, it.Phase)
		if len(g) == 0 {
			delete(p, it.Group)
		}
	}
}

// blocked reports whether an item of a lower phase of it's group is unsettled.
func (p phases) blocked(it Item) bool {
	if it.Group == 0 || it.Phase == 0 {
		return false
	}
	for ph, n := range p[it.Group] {
		if ph < it.Phase && n > 0 {
			return true
		}
	}
	return false
}

// NewWorker returns a worker over src and pub with cfg (defaults applied).
func NewWorker(src Source, pub Publisher, cfg Config) *Worker {
	cfg.defaults(pub)
	dp, _ := pub.(DevicePublisher)
	return &Worker{
		src: src, pub: pub, devPub: dp, cfg: cfg,
		woken:   make(map[[16]byte]struct{}),
		wakeCh:  make(chan struct{}, 1),
		slots:   make(chan struct{}, cfg.Window),
		results: make(chan result),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// Window returns the effective window of unconfirmed publishes.
func (w *Worker) Window() int { return w.cfg.Window }

// Stats returns the worker's counters.
func (w *Worker) Stats() Stats {
	return Stats{
		Published: w.published.Load(), Delivered: w.delivered.Load(),
		Retries: w.retries.Load(), Failed: w.failed.Load(), Unavailable: w.unavailable.Load(),
		Parked:     w.parked.Load(),
		QueueDepth: int(w.depth.Load()), InFlight: int(w.inflight.Load()),
	}
}

// clientQueue is the buffered FIFO of one client.
type clientQueue struct {
	items  []Item
	busy   bool   // its head is being delivered
	maxSeq uint64 // highest Seq taken into this queue (dedups the two fetch paths)
}

// Wake tells the worker that a device came online (the embedded broker's
// presence report): its commands, set aside while it was offline, are
// fetched again and delivered. Safe to call from any goroutine; it never
// blocks.
func (w *Worker) Wake(client [16]byte) {
	w.wakeMu.Lock()
	w.woken[client] = struct{}{}
	w.wakeMu.Unlock()
	select {
	case w.wakeCh <- struct{}{}:
	default:
	}
}

func (w *Worker) takeWoken() [][16]byte {
	w.wakeMu.Lock()
	defer w.wakeMu.Unlock()
	ids := make([][16]byte, 0, len(w.woken))
	for id := range w.woken {
		ids = append(ids, id)
	}
	clear(w.woken)
	return ids
}

// online reports whether commands for client may be handed out now: always
// with a publisher that cannot see devices.
func (w *Worker) online(client [16]byte) bool {
	return w.devPub == nil || w.devPub.Online(client)
}

// Run delivers items until Shutdown completes or ctx is done. Cancelling
// ctx stops at once: publishes in flight are abandoned and their items are
// resent by the next run (at least once). Run returns nil after a
// graceful Shutdown, ctx's error otherwise. A Worker runs once.
func (w *Worker) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return ErrStopped
	}
	defer close(w.done)
	hard, cancel := context.WithCancel(ctx)
	defer cancel()
	w.cancel.Store(&cancel)

	poll := time.NewTicker(w.cfg.PollInterval)
	defer poll.Stop()
	l := &loop{w: w, hard: hard, queues: make(map[[16]byte]*clientQueue), groups: make(phases),
		more: true, fetch: true, stopCh: w.stop, hardDone: hard.Done()}
	changed := w.src.Changed()
	if w.stopping() {
		return nil // Shutdown before Run: nothing to do
	}
	for {
		if l.stopping && l.active == 0 {
			w.depth.Store(0)
			w.cfg.Metrics.QueueDepth(0)
			return ctx.Err()
		}
		if !l.stopping && l.fetch && l.buffered < w.cfg.Prefetch {
			l.fetchPending()
		}
		next := l.nextReady()
		var slotCh chan struct{}
		if next >= 0 {
			slotCh = w.slots
		}
		select {
		case slotCh <- struct{}{}:
			l.start(next)
		case r := <-w.results:
			l.settle(r)
		case <-changed:
			l.fetch = true
		case <-w.wakeCh:
			if !l.stopping {
				l.wake()
			}
		case <-poll.C:
			l.fetch = true
		case <-l.stopCh:
			l.stopping, l.stopCh = true, nil
		case <-l.hardDone:
			// Delivery goroutines see the cancellation and report back;
			// stop selecting on this closed channel so the loop waits
			// for them instead of spinning.
			l.stopping, l.hardDone, l.stopCh = true, nil, nil
		}
	}
}

// loop is the state of one Run: the buffered per-client FIFOs and what the
// select decides on. Only Run's goroutine touches it.
type loop struct {
	w    *Worker
	hard context.Context

	queues   map[[16]byte]*clientQueue
	groups   phases
	ready    [][16]byte // clients whose head can go, in turn order
	buffered int
	active   int    // delivery goroutines alive
	cursor   uint64 // Seq of the last item taken from Source.Pending
	more     bool   // the last fetch was full: the Source may hold more
	fetch    bool
	stopping bool
	stopCh   <-chan struct{}
	hardDone <-chan struct{}
}

// depthChanged publishes the number of buffered items.
func (l *loop) depthChanged() {
	l.w.depth.Store(int64(l.buffered))
	l.w.cfg.Metrics.QueueDepth(l.buffered)
}

// fetchPending reads the next items of the Source into the queues of
// devices that are online (or already being delivered to).
func (l *loop) fetchPending() {
	w := l.w
	l.fetch = false
	want := w.cfg.Prefetch - l.buffered
	items, err := w.src.Pending(l.hard, l.cursor, want)
	if err != nil {
		if l.hard.Err() == nil {
			w.cfg.Logger.Warn("mqtt: delivery queue read failed; retrying at next poll", "error", err)
		}
		l.more = false
		l.depthChanged()
		return
	}
	for _, it := range items {
		if it.Seq <= l.cursor {
			// Out of order or repeated: would break FIFO.
			w.cfg.Logger.Warn("mqtt: source returned an item out of order; skipped", "seq", it.Seq, "after", l.cursor)
			continue
		}
		l.cursor = it.Seq
		l.take(it)
	}
	l.more = len(items) >= want
	l.fetch = l.more && l.buffered < w.cfg.Prefetch
	l.depthChanged()
}

// take appends a fetched item to its client's queue, unless the queue has
// it already or its device is offline (then it waits in the Source until
// Wake).
func (l *loop) take(it Item) {
	q := l.queues[it.ClientID]
	if q != nil && it.Seq <= q.maxSeq {
		return // already fetched when its device came online
	}
	if q == nil {
		if !l.w.online(it.ClientID) {
			return
		}
		q = &clientQueue{}
		l.queues[it.ClientID] = q
	}
	q.items = append(q.items, it)
	q.maxSeq = it.Seq
	l.groups.add(it, 1)
	l.buffered++
	if len(q.items) == 1 && !q.busy {
		l.ready = append(l.ready, it.ClientID)
	}
}

// nextReady returns the index in ready of the first client whose head is
// not held back by an earlier phase of its group (held ones keep their
// turn), or -1.
func (l *loop) nextReady() int {
	if l.stopping {
		return -1
	}
	for i, id := range l.ready {
		if !l.groups.blocked(l.queues[id].items[0]) {
			return i
		}
	}
	return -1
}

// start delivers the head of ready[next]'s queue; the caller took a slot.
func (l *loop) start(next int) {
	l.w.slotTaken()
	id := l.ready[next]
	l.ready = append(l.ready[:next], l.ready[next+1:]...)
	q := l.queues[id]
	q.busy = true
	l.active++
	go l.w.deliver(l.hard, q.items[0])
}

// settle applies the outcome of a delivery to its client's queue.
func (l *loop) settle(r result) {
	l.active--
	q := l.queues[r.client]
	q.busy = false
	switch r.outcome {
	case completed:
		l.groups.add(q.items[0], -1)
		q.items = q.items[1:]
		l.buffered--
	case offline:
		// Set the whole queue aside: the device gets it, from the
		// Source, when it is back. It may be back already.
		for _, it := range q.items {
			l.groups.add(it, -1)
		}
		l.buffered -= len(q.items)
		q.items = nil
		l.w.parked.Add(1)
		if !l.stopping && l.w.online(r.client) {
			l.w.Wake(r.client)
		}
	}
	l.depthChanged()
	switch {
	case len(q.items) == 0:
		delete(l.queues, r.client)
	case !l.stopping:
		l.ready = append(l.ready, r.client)
	}
	if l.more && l.buffered <= l.w.cfg.Prefetch/2 {
		l.fetch = true
	}
}

// wake fetches the whole queue of every device reported online that has no
// queue in the worker.
func (l *loop) wake() {
	w := l.w
	for _, id := range w.takeWoken() {
		if l.queues[id] != nil || !w.online(id) {
			continue // being delivered, or gone again
		}
		items, err := w.src.PendingFor(l.hard, id)
		if err != nil {
			if l.hard.Err() == nil {
				w.cfg.Logger.Warn("mqtt: reading a device's queue failed; retrying", "error", err)
				w.Wake(id)
			}
			continue
		}
		if len(items) == 0 {
			continue
		}
		q := &clientQueue{items: items, maxSeq: items[len(items)-1].Seq}
		l.queues[id] = q
		for _, it := range items {
			l.groups.add(it, 1)
		}
		l.buffered += len(items)
		l.ready = append(l.ready, id)
	}
	l.depthChanged()
}

// Shutdown stops taking new items and waits for the publishes in flight to
// be confirmed and recorded, or for ctx to be done, in which case they are
// abandoned (and resent by the next run) and ctx's error is returned.
func (w *Worker) Shutdown(ctx context.Context) error {
	w.once.Do(func() { close(w.stop) })
	if !w.started.Load() {
		return nil
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		if c := w.cancel.Load(); c != nil {
			(*c)()
		}
		<-w.done
		return fmt.Errorf("mqtt: shutdown: %w", ctx.Err())
	}
}

func (w *Worker) stopping() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

func (w *Worker) slotTaken() {
	w.cfg.Metrics.InFlight(int(w.inflight.Add(1)))
}

func (w *Worker) slotFreed() {
	<-w.slots
	w.cfg.Metrics.InFlight(int(w.inflight.Add(-1)))
}

// sleep waits d; false if the worker is stopping or ctx is done.
func (w *Worker) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-w.stop:
		return false
	}
}

// deliver runs the attempts of one item, holding a window slot while it
// publishes and releasing it while it waits, and reports to Run.
func (w *Worker) deliver(ctx context.Context, it Item) {
	holding := true
	release := func() {
		if holding {
			w.slotFreed()
			holding = false
		}
	}
	acquire := func() bool {
		if holding {
			return true
		}
		select {
		case w.slots <- struct{}{}:
			w.slotTaken()
			holding = true
			return true
		case <-ctx.Done():
			return false
		case <-w.stop:
			return false
		}
	}
	out := w.attempts(ctx, it, release, acquire)
	release()
	w.results <- result{client: it.ClientID, outcome: out}
}

// attempts delivers it: completed once delivered or failed is recorded,
// offline when its device is not connected.
func (w *Worker) attempts(ctx context.Context, it Item, release func(), acquire func() bool) outcome {
	topic := ControlTopic(it.ClientID)
	var (
		attempts int
		age      time.Duration // time spent failing while the broker was reachable
		since    time.Time     // start of the current reachable stretch
		backoff  = w.cfg.MinBackoff
		unavail  = minUnavailableWait
	)
	waitUnavailable := func() bool {
		w.unavailable.Add(1)
		w.cfg.Metrics.Unavailable()
		since = time.Time{}
		release()
		ok := w.sleep(ctx, unavail)
		unavail = min(unavail*2, maxUnavailableWait)
		return ok && acquire()
	}
	for {
		// A stopping worker finishes what it publishes but starts nothing.
		if w.stopping() || ctx.Err() != nil {
			return abandoned
		}
		if !w.pub.Connected() {
			if !waitUnavailable() {
				return abandoned
			}
			continue
		}
		if !w.online(it.ClientID) {
			return offline
		}
		now := w.cfg.Now()
		if since.IsZero() {
			since = now
		}
		payload, err := w.src.Build(ctx, it, now)
		if err != nil && errors.Is(err, ErrPermanent) {
			return w.recordFailed(ctx, it, fmt.Sprintf("build: %v", err))
		}
		if err == nil {
			ev := Accepted
			actx, cancel := context.WithTimeout(ctx, w.cfg.AttemptTimeout)
			if w.devPub != nil {
				ev, err = w.devPub.Deliver(actx, it.ClientID, payload)
			} else {
				err = w.pub.Publish(actx, topic, payload)
			}
			cancel()
			w.published.Add(1)
			w.cfg.Metrics.Published()
			if err == nil {
				// The exchange is over: its window slot goes to the next
				// publish while the outcome is written (the client's
				// queue stays held until then, so its order is kept).
				release()
				if !w.record(ctx, func(c context.Context) error { return w.src.Delivered(c, it, ev) }) {
					return abandoned
				}
				w.delivered.Add(1)
				w.cfg.Metrics.Delivered()
				return completed
			}
			if errors.Is(err, ErrOffline) && ctx.Err() == nil {
				return offline
			}
			err = fmt.Errorf("publish: %w", err)
		} else {
			err = fmt.Errorf("build: %w", err)
		}
		if ctx.Err() != nil {
			return abandoned // hard stop: outcome unknown, resent by the next run
		}
		if errors.Is(err, ErrUnavailable) || !w.pub.Connected() {
			// The connection went away: not the item's fault.
			if !waitUnavailable() {
				return abandoned
			}
			continue
		}
		unavail = minUnavailableWait
		attempts++
		end := w.cfg.Now()
		if d := end.Sub(since); d > 0 {
			age += d
		}
		since = end
		if attempts >= w.cfg.MaxAttempts || age >= w.cfg.MaxAge {
			return w.recordFailed(ctx, it, fmt.Sprintf("gave up after %d attempts: %v", attempts, err))
		}
		w.retries.Add(1)
		w.cfg.Metrics.Retried()
		release()
		if !w.sleep(ctx, backoff) || !acquire() {
			return abandoned
		}
		backoff = min(backoff*2, w.cfg.MaxBackoff)
		// The back-off is failing time too, as long as the broker stays up.
	}
}

func (w *Worker) recordFailed(ctx context.Context, it Item, reason string) outcome {
	if !w.record(ctx, func(c context.Context) error { return w.src.Failed(c, it, reason) }) {
		return abandoned
	}
	w.failed.Add(1)
	w.cfg.Metrics.Failed()
	w.cfg.Logger.Warn("mqtt: command delivery failed", "client", fmt.Sprintf("%x", it.ClientID), "ref", it.Ref, "reason", reason)
	return completed
}

// record calls fn until it succeeds or ctx is done (a graceful Shutdown
// still records: only the hard stop abandons).
func (w *Worker) record(ctx context.Context, fn func(context.Context) error) bool {
	backoff := w.cfg.MinBackoff
	for {
		err := fn(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		w.cfg.Logger.Warn("mqtt: recording a delivery outcome failed; retrying", "error", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
		backoff = min(backoff*2, w.cfg.MaxBackoff)
	}
}
