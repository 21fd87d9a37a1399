package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/suites"
)

// AttachOptions configure the concurrent attach measurement.
type AttachOptions struct {
	Devices int // connected devices (default 1000)
	Ops     int // new_topic_client operations (default 5000)
	Callers int // concurrent callers (default 8)
	// Spread sends consecutive operations to different topics (op i links
	// client i/T to topic i%T, T >= 8 topics) instead of filling one topic
	// after the other (op i links client i%Devices to topic i/Devices):
	// concurrent callers then rarely race on one topic stream.
	Spread bool
	// LockTopic makes callers take a per-topic lock around each call: it
	// emulates, from outside, a C2 that serializes its own decisions per
	// stream (no in-process version conflicts), to measure that fix.
	LockTopic bool
	Suite     string
	Mode      string
	Dir       string
	Farm      FarmCommand
	Stage     func(stage string, done, total int)
}

// AttachResult is what the attach run measured.
type AttachResult struct {
	Ops       int
	Callers   int
	Spread    bool
	LockTopic bool
	// Failed counts operations the C2 refused after exhausting its
	// conflict retries (the target is zero); FirstFailure is one of them.
	Failed       int
	FirstFailure string
	Wall         time.Duration // first call to last reply
	OpsPerSec    float64
	P50, P99     time.Duration
	Max          time.Duration
	// Delivered is the time from the first call until the C2 recorded
	// every queued SetTopicKey as delivered and every device applied it.
	Delivered time.Duration
	// Fsync is the same-run baseline: one write + fsync of a file in the
	// store's directory.
	Fsync time.Duration
}

// Attach runs a whole C2 with the embedded broker and o.Devices connected
// devices, and times o.Ops new_topic_client operations issued by o.Callers
// concurrent callers. Every operation returns once its events are durable
// (boltstore, fsync; group commit shares the fsync between callers); the
// delivery worker then publishes each SetTopicKey through the embedded
// broker to the connected device.
func Attach(ctx context.Context, o AttachOptions) (res AttachResult, err error) {
	if err := o.defaults(); err != nil {
		return res, err
	}
	res.Ops, res.Callers, res.Spread, res.LockTopic = o.Ops, o.Callers, o.Spread, o.LockTopic
	mode, err := suites.ParseMode(o.Mode)
	if err != nil {
		return res, err
	}
	o.Stage("starting the C2 (embedded broker)", 0, 0)
	s, err := startC2Server(ctx, o.Dir, "embedded", o.Suite, o.Mode, 0)
	if err != nil {
		return res, err
	}
	defer s.close()
	svc := s.srv.Service()
	names, reg, devs, err := makeDevices(svc.Suite(), mode, "att", o.Devices)
	if err != nil {
		return res, err
	}
	o.Stage("registering devices", 0, 0)
	if err := registerClients(ctx, svc, names, reg, 64, nil); err != nil {
		return res, err
	}
	plan := newAttachPlan(o, names)
	if err := plan.createTopics(ctx, svc); err != nil {
		return res, err
	}
	spec := farmSpec{Broker: s.broker, Suite: o.Suite, Mode: o.Mode, Topic: plan.topic(0), Devices: devs}
	if svc.C2().Exists {
		spec.C2Pub = svc.C2().PublicKey
	}
	o.Stage("connecting devices", 0, 0)
	f, err := startFarm(o.Farm, spec, 5*time.Minute)
	if err != nil {
		return res, err
	}
	defer f.close()
	before, err := f.count()
	if err != nil {
		return res, err
	}

	start := time.Now()
	calls := runAttachCalls(ctx, o, svc, plan)
	res.Wall = time.Since(start)
	res.Failed, res.FirstFailure = calls.failed, calls.firstFailure
	if calls.err != nil {
		return res, calls.err
	}
	if err := waitApplied(f, before, o.Ops-res.Failed, o.Ops, svc); err != nil {
		return res, err
	}
	res.Delivered = time.Since(start)
	lat := calls.lat
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	res.P50, res.P99, res.Max = Percentile(lat, 50), Percentile(lat, 99), lat[len(lat)-1]
	res.OpsPerSec = float64(o.Ops-res.Failed) / res.Wall.Seconds()
	if res.Fsync, err = fsyncBaseline(s.dir, 300*time.Millisecond); err != nil {
		return res, err
	}
	return res, nil
}

func (o *AttachOptions) defaults() error {
	if o.Devices <= 0 {
		o.Devices = 1000
	}
	if o.Ops <= 0 {
		o.Ops = 5000
	}
	if o.Callers <= 0 {
		o.Callers = 8
	}
	if o.Suite == "" {
		o.Suite, o.Mode = "standard", "sk"
	}
	if o.Stage == nil {
		o.Stage = func(string, int, int) {}
	}
	if o.Farm == nil {
		return fmt.Errorf("attach: no device farm command")
	}
	return nil
}

// attachPlan says which client operation i links to which topic.
type attachPlan struct {
	names   []string
	devices int
	topics  int
	spread  bool
}

func newAttachPlan(o AttachOptions, names []string) attachPlan {
	n := (o.Ops + o.Devices - 1) / o.Devices
	if o.Spread {
		n = max(n, 8)
	}
	return attachPlan{names: names, devices: o.Devices, topics: n, spread: o.Spread}
}

func (p attachPlan) topic(i int) string { return fmt.Sprintf("bench/attach/%d", i) }

// pair returns the client and topic of operation i.
func (p attachPlan) pair(i int) (string, string) {
	if p.spread {
		return p.names[(i/p.topics)%p.devices], p.topic(i % p.topics)
	}
	return p.names[i%p.devices], p.topic(i / p.devices)
}

func (p attachPlan) createTopics(ctx context.Context, svc *c2.Service) error {
	for i := range p.topics {
		if _, err := svc.NewTopic(ctx, origin, p.topic(i)); err != nil {
			return err
		}
	}
	return nil
}

// attachCalls is what the concurrent callers measured.
type attachCalls struct {
	lat          []time.Duration // per operation
	failed       int             // operations refused on contention
	firstFailure string          // one of those refusals
	err          error           // the error that ended the run early
}

// runAttachCalls issues the o.Ops operations from o.Callers goroutines
// and returns when all are answered or one failed for a reason other
// than contention.
func runAttachCalls(ctx context.Context, o AttachOptions, svc *c2.Service, plan attachPlan) attachCalls {
	lat := make([]time.Duration, o.Ops)
	var topicLocks sync.Map
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	var finished, failed atomic.Int64
	// The first contention failure is kept by CompareAndSwap and read
	// after wg.Wait: nothing else is shared by the callers, so the race
	// detector (and CI's -race smoke run) sees no shared write.
	var firstFailure atomic.Pointer[string]
	call := func(i int) error {
		client, topic := plan.pair(i)
		t0 := time.Now()
		var mu *sync.Mutex
		if o.LockTopic {
			m, _ := topicLocks.LoadOrStore(topic, &sync.Mutex{})
			mu = m.(*sync.Mutex)
			mu.Lock()
		}
		_, err := svc.NewTopicClient(ctx, c2.Origin{Actor: "token:bench"}, c2.ByName(client), topic)
		if mu != nil {
			mu.Unlock()
		}
		lat[i] = time.Since(t0) // with the wait for the lock: the caller's latency
		return err
	}
	for range o.Callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= o.Ops || firstErr.Load() != nil {
					return
				}
				if err := call(i); err != nil {
					// A failed operation is a result (the C2 gave up on
					// contention), not the end of the run; anything but a
					// conflict ends it.
					failed.Add(1)
					if !errors.Is(err, eventstore.ErrConflict) {
						err = fmt.Errorf("new_topic_client: %w", err)
						firstErr.CompareAndSwap(nil, &err)
						return
					}
					msg := err.Error()
					firstFailure.CompareAndSwap(nil, &msg)
				}
				o.Stage("attach", int(finished.Add(1)), o.Ops)
			}
		}()
	}
	wg.Wait()
	out := attachCalls{lat: lat, failed: int(failed.Load())}
	if p := firstFailure.Load(); p != nil {
		out.firstFailure = *p
	}
	if p := firstErr.Load(); p != nil {
		out.err = *p
	}
	return out
}

// waitApplied waits until the C2 has no command queued and the devices
// applied want more commands than before (every SetTopicKey confirmed by
// the broker and applied by its device); of is the number attempted, for
// the message.
func waitApplied(f *farm, before farmEvent, want, of int, svc *c2.Service) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ev, err := f.count()
		if err != nil {
			return err
		}
		if ev.Errors > before.Errors {
			return fmt.Errorf("devices failed to apply %d commands", ev.Errors-before.Errors)
		}
		if ev.Commands-before.Commands >= int64(want) && svc.PendingCount() == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after 2 min, devices applied %d of %d commands, %d still queued",
				ev.Commands-before.Commands, of, svc.PendingCount())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
