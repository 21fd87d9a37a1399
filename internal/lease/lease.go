package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/e4c2/e4c2/eventstore"
)

// DefaultDuration is the lease duration T when Config.Duration is zero:
// with a standby polling every T/8, a dead holder's duty moves within
// 10 s.
const DefaultDuration = 8 * time.Second

// State is what this instance knows of its part in a lease.
type State int

const (
	// Standby: another instance holds the lease (or nobody does yet and
	// this one has not won it).
	Standby State = iota
	// Holder: this instance holds the lease and runs the duty.
	Holder
	// Lost: this instance held the lease but could not prove a renewal
	// within the lease duration; its duty is stopped (fenced) and it
	// keeps renewing: a renewal that still succeeds (nobody took over)
	// makes it the holder again, a conflict a standby.
	Lost
)

func (s State) String() string {
	switch s {
	case Holder:
		return "holder"
	case Lost:
		return "lost"
	}
	return "standby"
}

// Config configures a Lease. Store, Duty and Instance are required.
type Config struct {
	Store eventstore.Store
	// Duty names the lease and its stream ("lease-<duty>").
	Duty string
	// Instance identifies this C2 instance in the lease events (unique
	// among the instances sharing the log).
	Instance string
	// Duration is the lease duration T (default DefaultDuration).
	Duration time.Duration
	// Now is the clock (default time.Now, whose monotonic reading makes
	// every interval immune to wall-clock steps). Only differences of its
	// readings are used, never compared with another machine's.
	Now func() time.Time
	// Logger receives lease changes (default slog.Default()).
	Logger *slog.Logger
}

// Status is a snapshot of a lease as this instance knows it.
type Status struct {
	Duty  string
	State State
	// Holder is the instance id of the newest holder seen ("" when
	// nobody ever held it or it was released).
	Holder string
	Term   uint64
	// Acquisitions counts the times this instance won the lease.
	Acquisitions uint64
}

// Lease is one duty's lease as one instance runs it. Step and Run must not
// be called concurrently; Status may be called from any goroutine.
type Lease struct {
	cfg     Config
	stream  string
	session string // tells this process's appends from those of an earlier one with the same Instance

	mu       sync.Mutex
	state    State
	version  uint64    // newest stream version seen or written
	last     Event     // payload of that version
	lastType string    // its wire type ("" with no stream)
	seenAt   time.Time // standby: when version was first seen
	sentAt   time.Time // holder: when the newest successful append was sent
	tried    time.Time // when the newest append attempt was sent
	fenceAt  time.Time // holder: the duty must be stopped by then
	acquired uint64
}

// New returns a lease in the standby state; nothing is read or written
// before the first Step.
func New(cfg Config) (*Lease, error) {
	if cfg.Store == nil || cfg.Duty == "" || cfg.Instance == "" {
		return nil, errors.New("lease: config needs Store, Duty and Instance")
	}
	if cfg.Duration <= 0 {
		cfg.Duration = DefaultDuration
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("lease: session id: %w", err)
	}
	return &Lease{cfg: cfg, stream: Stream(cfg.Duty), session: hex.EncodeToString(b[:])}, nil
}

// Status returns the lease as this instance knows it now.
func (l *Lease) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := Status{Duty: l.cfg.Duty, State: l.state, Term: l.last.Term, Acquisitions: l.acquired}
	if l.lastType != TypeReleased {
		st.Holder = l.last.Holder
	}
	return st
}

// Held reports whether this instance holds the lease now.
func (l *Lease) Held() bool { return l.Status().State == Holder }

// margin is how much earlier than T the holder fences: it covers stopping
// the duty and any difference in clock rate between machines.
func (l *Lease) margin() time.Duration { return l.cfg.Duration / 10 }

// RenewEvery is the holder's renewal interval, T/3: two renewals may fail
// before the holder fences.
func (l *Lease) RenewEvery() time.Duration { return l.cfg.Duration / 3 }

// PollEvery is the standby's poll interval, T/8.
func (l *Lease) PollEvery() time.Duration { return l.cfg.Duration / 8 }

// Step does one round of the lease protocol at the clock's current time:
// a holder renews when due (and fences when it cannot prove a renewal in
// time), a standby reads the stream and acquires a lease that was released
// or not renewed for its duration. It returns the state after the round.
// Errors of the store do not change a standby and fence a holder only at
// its deadline; they are returned for logging.
func (l *Lease) Step(ctx context.Context) (State, error) {
	l.mu.Lock()
	state := l.state
	l.mu.Unlock()
	if state == Standby {
		return l.standbyStep(ctx)
	}
	return l.holderStep(ctx)
}

func (l *Lease) setState(s State) {
	l.mu.Lock()
	prev := l.state
	l.state = s
	l.mu.Unlock()
	if prev != s {
		l.cfg.Logger.Info("lease state changed", "duty", l.cfg.Duty, "instance", l.cfg.Instance, "from", prev.String(), "to", s.String())
	}
}

// observe reads the stream past the newest version seen and records its
// newest event (and when it was first seen). It returns whether the stream
// moved.
func (l *Lease) observe(ctx context.Context) (bool, error) {
	rctx, cancel := context.WithTimeout(ctx, l.RenewEvery())
	defer cancel()
	recs, err := l.cfg.Store.ReadStream(rctx, l.stream, l.version+1)
	if err != nil {
		return false, fmt.Errorf("lease %s: read: %w", l.cfg.Duty, err)
	}
	if len(recs) == 0 {
		return false, nil
	}
	r := recs[len(recs)-1]
	var ev Event
	if err := json.Unmarshal(r.Data, &ev); err != nil {
		return false, fmt.Errorf("lease %s: version %d: %w: %w", l.cfg.Duty, r.Version, ErrInvalid, err)
	}
	l.mu.Lock()
	l.version, l.last, l.lastType, l.seenAt = r.Version, ev, r.Type, l.cfg.Now()
	l.mu.Unlock()
	return true, nil
}

// ours reports whether the newest event seen was written by this process.
func (l *Lease) ours() bool {
	return l.last.Holder == l.holderID() && l.lastType != TypeReleased
}

// holderID is what this process writes as Holder: the instance id and the
// session, so a restarted process with the same instance id does not take
// its predecessor's renewals for its own.
func (l *Lease) holderID() string { return l.cfg.Instance + "/" + l.session }

func (l *Lease) standbyStep(ctx context.Context) (State, error) {
	if _, err := l.observe(ctx); err != nil {
		return Standby, err
	}
	now := l.cfg.Now()
	l.mu.Lock()
	version, last, lastType, seenAt, tried := l.version, l.last, l.lastType, l.seenAt, l.tried
	l.mu.Unlock()
	if version > 0 && l.ours() {
		// Our own acquire, whose answer was lost: we hold it since we
		// sent it at the latest.
		l.mu.Lock()
		l.sentAt, l.fenceAt = tried, tried.Add(l.cfg.Duration-l.margin())
		l.mu.Unlock()
		l.setState(Holder)
		return l.holderStep(ctx)
	}
	d := last.Duration()
	if d <= 0 {
		d = l.cfg.Duration
	}
	free := version == 0 || lastType == TypeReleased || now.Sub(seenAt) >= d
	if !free {
		return Standby, nil
	}
	ev := Event{Duty: l.cfg.Duty, Holder: l.holderID(), Term: last.Term + 1, DurationMS: l.cfg.Duration.Milliseconds()}
	sent, v, err := l.append(ctx, TypeAcquired, version, ev, l.RenewEvery())
	if err != nil {
		if errors.Is(err, eventstore.ErrConflict) {
			return Standby, nil // another instance won; the next round reads it
		}
		return Standby, err
	}
	l.mu.Lock()
	l.version, l.last, l.lastType = v, ev, TypeAcquired
	l.sentAt, l.fenceAt = sent, sent.Add(l.cfg.Duration-l.margin())
	l.acquired++
	l.mu.Unlock()
	l.setState(Holder)
	l.cfg.Logger.Info("lease acquired", "duty", l.cfg.Duty, "instance", l.cfg.Instance, "term", ev.Term,
		"previous", last.Holder, "version", v)
	return Holder, nil
}

// append writes one lease event at the expected version, bounded by
// timeout, and returns when it was sent.
func (l *Lease) append(ctx context.Context, typ string, expected uint64, ev Event, timeout time.Duration) (time.Time, uint64, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("lease: encode: %w", err)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return time.Time{}, 0, fmt.Errorf("lease: event id: %w", err)
	}
	sent := l.cfg.Now()
	l.mu.Lock()
	l.tried = sent
	l.mu.Unlock()
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := l.cfg.Store.Append(actx, l.stream, int64(expected), eventstore.EventData{
		ID: hex.EncodeToString(id[:]), Type: typ, Data: data,
		Meta: eventstore.Metadata{Time: time.Now().UTC(), Actor: "system:lease:" + l.cfg.Instance},
	})
	if err != nil {
		return sent, 0, fmt.Errorf("lease %s: append %s: %w", l.cfg.Duty, typ, err)
	}
	return sent, v, nil
}

func (l *Lease) holderStep(ctx context.Context) (State, error) {
	now := l.cfg.Now()
	l.mu.Lock()
	state, version, last, sentAt, fenceAt := l.state, l.version, l.last, l.sentAt, l.fenceAt
	l.mu.Unlock()
	if state == Holder && now.Before(sentAt.Add(l.RenewEvery())) {
		return Holder, nil // not due
	}
	// The append may take at most until the fence: a store that does not
	// answer must not keep the duty running past it.
	timeout := fenceAt.Sub(now)
	if state == Lost || timeout <= 0 {
		timeout = l.RenewEvery()
		if state == Holder {
			l.setState(Lost)
			state = Lost
		}
	}
	ev := Event{Duty: l.cfg.Duty, Holder: l.holderID(), Term: last.Term, DurationMS: l.cfg.Duration.Milliseconds()}
	sent, v, err := l.append(ctx, TypeRenewed, version, ev, timeout)
	if err == nil {
		l.mu.Lock()
		l.version, l.last, l.lastType = v, ev, TypeRenewed
		l.sentAt, l.fenceAt = sent, sent.Add(l.cfg.Duration-l.margin())
		l.mu.Unlock()
		l.setState(Holder)
		return Holder, nil
	}
	if errors.Is(err, eventstore.ErrConflict) {
		return l.afterConflict(ctx, err)
	}
	if state == Holder && !l.cfg.Now().Before(fenceAt) {
		l.setState(Lost)
		state = Lost
	}
	return state, err
}

// afterConflict reads the stream after a renewal conflicted: either the
// store kept an earlier renewal of ours whose answer was lost (we still
// hold the lease, at the newer version) or another instance took over.
func (l *Lease) afterConflict(ctx context.Context, cause error) (State, error) {
	if _, err := l.observe(ctx); err != nil {
		// Cannot tell: stop the duty now, the next round reads again.
		l.setState(Lost)
		return Lost, errors.Join(cause, err)
	}
	if l.ours() {
		return l.state, nil // renew at the newer version next round
	}
	l.setState(Standby)
	l.cfg.Logger.Warn("lease lost to another instance", "duty", l.cfg.Duty, "instance", l.cfg.Instance, "holder", l.last.Holder, "term", l.last.Term)
	return Standby, nil
}

// next returns how long Run waits before the next Step.
func (l *Lease) next() time.Duration {
	l.mu.Lock()
	state, sentAt, fenceAt := l.state, l.sentAt, l.fenceAt
	l.mu.Unlock()
	now := l.cfg.Now()
	switch state {
	case Holder:
		d := min(sentAt.Add(l.RenewEvery()).Sub(now), fenceAt.Sub(now))
		return max(d, time.Millisecond)
	case Lost:
		return l.PollEvery()
	}
	return l.PollEvery()
}

// Run keeps the lease until ctx is done: it runs duty (with a context
// cancelled as soon as the lease is not provably held) in each term this
// instance holds the lease, and waits for it to return before it runs it
// again. When ctx is done it stops the duty, waits for it, and releases the
// lease so a standby takes over at once. It returns ctx's error.
func (l *Lease) Run(ctx context.Context, duty func(context.Context)) error {
	var d dutyRun
	defer d.stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			d.stop()
			l.release()
			return ctx.Err()
		case <-timer.C:
		}
		st, err := l.Step(ctx)
		if err != nil && ctx.Err() == nil {
			l.cfg.Logger.Warn("lease", "duty", l.cfg.Duty, "state", st.String(), "err", err)
		}
		if st == Holder {
			d.start(ctx, duty)
		} else {
			d.stop()
		}
		timer.Reset(l.next())
	}
}

// dutyRun is the duty of the current term, if it runs.
type dutyRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (d *dutyRun) start(ctx context.Context, duty func(context.Context)) {
	if d.cancel != nil {
		return
	}
	dctx, cancel := context.WithCancel(ctx)
	d.cancel, d.done = cancel, make(chan struct{})
	go func() {
		defer close(d.done)
		duty(dctx)
	}()
}

// stop cancels the duty and waits for it to return.
func (d *dutyRun) stop() {
	if d.cancel == nil {
		return
	}
	d.cancel()
	<-d.done
	d.cancel = nil
}

// release appends released if this instance holds (or held) the lease,
// so a standby need not wait out the duration.
func (l *Lease) release() {
	l.mu.Lock()
	state, version, last := l.state, l.version, l.last
	l.mu.Unlock()
	if state == Standby {
		return
	}
	ev := Event{Duty: l.cfg.Duty, Holder: l.holderID(), Term: last.Term, DurationMS: l.cfg.Duration.Milliseconds()}
	_, v, err := l.append(context.Background(), TypeReleased, version, ev, 2*time.Second)
	if err != nil {
		l.cfg.Logger.Warn("lease release failed; a standby takes over after the lease duration", "duty", l.cfg.Duty, "err", err)
	} else {
		l.mu.Lock()
		l.version, l.last, l.lastType = v, ev, TypeReleased
		l.mu.Unlock()
	}
	l.setState(Standby)
}
