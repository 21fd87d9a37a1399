package monitor

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/suites/core"
)

// Service is what the monitor needs of the C2 service; *c2.Service
// implements it.
type Service interface {
	Suite() core.Suite
	Mode() core.Mode
	Window() core.Window
	Transition() time.Duration
	TopicKeyVersion(h domain.ID) (uint64, bool)
	TopicKeyHistory(ctx context.Context, h domain.ID, older int) (c2.TopicKeyHistory, error)
	Signer(id, h domain.ID) (c2.SignerInfo, bool)
	RecordFindings(ctx context.Context, o c2.Origin, fs []domain.MonitorFinding) error
}

var _ Service = (*c2.Service)(nil)

// Message is one published message handed to the monitor by a Source.
type Message struct {
	Topic   string
	Payload []byte // read during classification only, never kept
	// Client is the publisher's device id when the source knows it (the
	// embedded broker does; a shared subscription does not).
	Client    domain.ID
	HasClient bool
}

// Config configures a Monitor. Service is required.
type Config struct {
	Service Service
	// QueueSize bounds the messages waiting for classification (default
	// 4096). A message that finds the queue full is not classified: it is
	// counted as dropped and reported as a "sampled" finding.
	QueueSize int
	// QueueBytes bounds the payload bytes waiting for classification
	// (default 64 MiB), so that large messages cannot make the queue hold
	// QueueSize times the broker's packet limit; past it a message is
	// dropped like one that finds the queue full.
	QueueBytes int64
	// Workers classify in parallel (default 1).
	Workers int
	// FindingWindow is the aggregation window of findings (default 1
	// minute): one event per kind, topic, client and window.
	FindingWindow time.Duration
	// RateBucket is the bucket of the rate baseline (default 10 s).
	RateBucket time.Duration
	// Baseline tunes the rate anomaly detection.
	Baseline BaselineConfig
	// ReplayCapacity bounds the message digests remembered per topic
	// (default 65536; negative: no replay detection).
	ReplayCapacity int
	// OlderKeys is how many keys older than the previous one are tried
	// (default 8).
	OlderKeys int
	// MaxClients bounds the publishers with statistics of their own
	// (default 4096); the others are counted together.
	MaxClients int
	// Clock is the time source (default time.Now).
	Clock func() time.Time
	// Logger receives warnings (never a key or payload).
	Logger *slog.Logger
}

// Monitor classifies the traffic of the managed topics and records
// aggregated findings through the service. Offer is safe to call from any
// goroutine and never blocks.
type Monitor struct {
	cfg   Config
	svc   Service
	cls   *Classifier
	log   *slog.Logger
	seed  maphash.Seed
	queue chan Message

	mu     sync.RWMutex
	names  map[string]domain.ID // managed topic names seen
	topics map[domain.ID]*topicState

	cmu     sync.Mutex
	clients map[domain.ID]*counts

	agg aggregator
	// tickMu serializes Tick and Flush, so that the anomalies one sweeps
	// are in the aggregator before the other takes what is due.
	tickMu sync.Mutex

	queuedBytes atomic.Int64 // payload bytes in queue

	offered, dropped, unmanaged, classified atomic.Uint64
	recorded, recordErrs                    atomic.Uint64
}

// counts are per-class message counts and bytes.
type counts struct {
	classes [numClasses]uint64
	bytes   uint64
}

// New returns a monitor; Run starts it.
func New(cfg Config) (*Monitor, error) {
	if cfg.Service == nil {
		return nil, errors.New("monitor: a service is required")
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = 64 << 20
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.FindingWindow <= 0 {
		cfg.FindingWindow = time.Minute
	}
	if cfg.RateBucket <= 0 {
		cfg.RateBucket = 10 * time.Second
	}
	if cfg.ReplayCapacity == 0 {
		cfg.ReplayCapacity = 65536
	}
	if cfg.ReplayCapacity < 0 {
		cfg.ReplayCapacity = 0
	}
	if cfg.OlderKeys <= 0 {
		cfg.OlderKeys = 8
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 4096
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Baseline = cfg.Baseline.withDefaults()
	svc := cfg.Service
	cls, err := NewClassifier(svc.Suite(), svc.Mode(), svc.Window(), svc.Transition())
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	m := &Monitor{cfg: cfg, svc: svc, cls: cls, log: cfg.Logger, seed: maphash.MakeSeed(),
		queue: make(chan Message, cfg.QueueSize), names: map[string]domain.ID{},
		topics: map[domain.ID]*topicState{}, clients: map[domain.ID]*counts{}}
	m.agg.open = map[aggKey]*aggValue{}
	return m, nil
}

// Offer hands a message to the monitor without blocking. It returns false
// when the queue is full: the message is dropped, counted, and reported as
// a "sampled" finding (the monitor then watches a sample of the traffic).
// The monitor keeps payload until it is classified: the caller must not
// change it afterwards.
func (m *Monitor) Offer(msg Message) bool {
	m.offered.Add(1)
	n := int64(len(msg.Payload))
	// An empty queue takes any message; otherwise the bytes are bounded.
	if before := m.queuedBytes.Add(n) - n; before == 0 || before+n <= m.cfg.QueueBytes {
		select {
		case m.queue <- msg:
			return true
		default:
		}
	}
	m.queuedBytes.Add(-n)
	m.dropped.Add(1)
	m.agg.add(aggKey{kind: kindSampled}, 0, m.cfg.Clock(), "queue full: messages not classified")
	return false
}

// Run classifies queued messages with cfg.Workers goroutines, closes rate
// buckets and finding windows every second, and records the findings, until
// ctx is done; it then records what is left and returns nil.
func (m *Monitor) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range m.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case msg := <-m.queue:
					m.Process(msg)
					m.queuedBytes.Add(-int64(len(msg.Payload)))
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			m.Tick(ctx, m.cfg.Clock())
		case <-ctx.Done():
			wg.Wait()
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = m.Flush(fctx)
			return nil
		}
	}
}

// Process classifies one message now (Run's workers call it; tests and
// benchmarks may call it directly).
func (m *Monitor) Process(msg Message) Verdict {
	now := m.cfg.Clock()
	ts := m.topic(msg.Topic)
	if ts == nil {
		m.unmanaged.Add(1)
		return Verdict{Class: numClasses}
	}
	ts.mu.RLock()
	if ts.keysVersion != m.currentVersion(ts) {
		ts.mu.RUnlock()
		m.refresh(ts)
		ts.mu.RLock()
	}
	if ts.keys == nil {
		ts.mu.RUnlock()
		return Verdict{Class: numClasses}
	}
	var signer func(id []byte) (Signer, bool)
	if m.cls.pk != nil {
		signer = func(id []byte) (Signer, bool) { return m.signer(id, ts.hash) }
	}
	v := m.cls.Classify(ts.keys, signer, msg.Payload, now)
	ts.mu.RUnlock()
	m.classified.Add(1)

	if v.Class == ClassCurrent || v.Class == ClassPrevious || v.Class == ClassOldKey {
		if ts.replayed(maphash.Bytes(m.seed, msg.Payload), now) {
			v.Class = ClassReplay
		}
	}
	ts.account(v.Class, len(msg.Payload), now)
	client, hasClient := msg.Client, msg.HasClient
	detail := reasonOf(v, now)
	// The broker's authenticated publisher is the finding's client: a
	// signed message can be copied and republished by anybody, so its
	// signer is the client only when the source cannot say who published.
	if signer := domain.ID(v.Signer); v.HasSigner && !hasClient {
		client, hasClient = signer, true
	} else if v.HasSigner && signer != client {
		detail = strings.TrimPrefix(detail+"; signed by "+signer.String()+", published by another client", "; ")
	}
	if hasClient {
		m.accountClient(client, v.Class, len(msg.Payload))
	}
	if v.Class.Finding() {
		m.agg.add(aggKey{kind: v.Class.String(), topic: ts.hash, client: client}, v.KeyVersion, now, detail)
	}
	return v
}

// reasonOf is the short detail of a finding: never payload or key.
func reasonOf(v Verdict, now time.Time) string {
	switch v.Class {
	case ClassStale, ClassFuture:
		return fmt.Sprintf("timestamp %+ds from the monitor's clock", int64(v.Timestamp.Sub(now)/time.Second))
	case ClassOldKey:
		return fmt.Sprintf("authentic under key version %d", v.KeyVersion)
	}
	return ""
}

func (m *Monitor) currentVersion(ts *topicState) uint64 {
	v, _ := m.svc.TopicKeyVersion(ts.hash)
	return v
}

// topic returns the state of a managed topic, nil for an unmanaged one.
// Unmanaged names are not remembered (anybody can publish on any name).
func (m *Monitor) topic(name string) *topicState {
	m.mu.RLock()
	h, ok := m.names[name]
	var ts *topicState
	if ok {
		ts = m.topics[h]
	}
	m.mu.RUnlock()
	if ts != nil {
		return ts
	}
	if core.ValidateTopic(name) != nil {
		return nil
	}
	h = domain.TopicHash(name)
	if _, ok := m.svc.TopicKeyVersion(h); !ok {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if ts = m.topics[h]; ts == nil {
		ts = newTopicState(name, h, m.cfg, m.cfg.Clock())
		m.topics[h] = ts
	}
	m.names[name] = h
	return ts
}

// refresh loads the topic's key history again (after a rotation).
func (m *Monitor) refresh(ts *topicState) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hist, err := m.svc.TopicKeyHistory(ctx, ts.hash, m.cfg.OlderKeys)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.keys != nil {
		ts.keys.Wipe()
		ts.keys = nil
	}
	if err != nil {
		ts.keysVersion = 0
		m.log.Warn("monitor: topic keys unavailable", "topic", ts.name, "err", err)
		return
	}
	ts.keys, ts.keysVersion = &hist, hist.Current.Version
}

func (m *Monitor) signer(id []byte, topic domain.ID) (Signer, bool) {
	if len(id) != len(domain.ID{}) {
		return Signer{}, false
	}
	info, ok := m.svc.Signer(domain.ID(id), topic)
	if !ok {
		return Signer{}, false
	}
	return Signer{Public: info.SigningKey, Member: info.Member, Consumer: info.Role == domain.RoleConsumer}, true
}

func (m *Monitor) accountClient(id domain.ID, c Class, size int) {
	m.cmu.Lock()
	defer m.cmu.Unlock()
	cs := m.clients[id]
	if cs == nil {
		if len(m.clients) >= m.cfg.MaxClients {
			id = domain.ID{} // the others
		}
		if cs = m.clients[id]; cs == nil {
			cs = &counts{}
			m.clients[id] = cs
		}
	}
	cs.classes[c]++
	cs.bytes += uint64(size)
}

// Tick closes the rate buckets and finding windows that are over at now
// and records the findings due. Run calls it every second.
func (m *Monitor) Tick(ctx context.Context, now time.Time) {
	m.tickMu.Lock()
	defer m.tickMu.Unlock()
	m.sweep(now)
	_ = m.record(ctx, m.agg.due(now, m.cfg.FindingWindow, false))
}

// sweep closes the rate buckets over at now and counts their anomalies.
func (m *Monitor) sweep(now time.Time) {
	m.mu.RLock()
	states := make([]*topicState, 0, len(m.topics))
	for _, ts := range m.topics {
		states = append(states, ts)
	}
	m.mu.RUnlock()
	for _, ts := range states {
		for _, b := range ts.closeBuckets(now) {
			kind := kindRateSpike
			if b.anomaly == Drop {
				kind = kindRateDrop
			}
			m.agg.add(aggKey{kind: kind, topic: ts.hash}, 0, b.end,
				fmt.Sprintf("%d messages in %s, baseline %.1f±%.1f", b.count, m.cfg.RateBucket, b.mean, b.band))
		}
	}
}

// Flush closes the rate buckets and every open finding window now and
// records the findings.
func (m *Monitor) Flush(ctx context.Context) error {
	m.tickMu.Lock()
	defer m.tickMu.Unlock()
	now := m.cfg.Clock()
	m.sweep(now)
	return m.record(ctx, m.agg.due(now, 0, true))
}

// record appends findings; those that cannot be written are kept for the
// next attempt (at most 1024 of them).
func (m *Monitor) record(ctx context.Context, fs []domain.MonitorFinding) error {
	if len(fs) == 0 {
		return nil
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].WindowStart < fs[j].WindowStart })
	m.linkDeviceTruth(fs)
	if err := m.svc.RecordFindings(ctx, c2.Origin{Actor: c2.MonitorActor}, fs); err != nil {
		m.recordErrs.Add(1)
		m.log.Warn("monitor: record findings", "findings", len(fs), "err", err)
		m.agg.retryLater(fs)
		return fmt.Errorf("monitor: %w", err)
	}
	m.recorded.Add(uint64(len(fs)))
	return nil
}

// deviceTruth is implemented by *c2.Service: what the C2 wants a device to
// hold against what it has evidence of.
type deviceTruth interface {
	DeviceSync(c c2.ClientRef) (projections.DeviceSync, error)
}

// linkDeviceTruth adds to each old_key finding of a known publisher the
// device-truth view of that topic's key: the version the C2 wants the
// device to hold and the ones it has evidence of, next to the version the
// device still uses (the finding's KeyVersion).
func (m *Monitor) linkDeviceTruth(fs []domain.MonitorFinding) {
	dt, ok := m.svc.(deviceTruth)
	if !ok {
		return
	}
	for i := range fs {
		f := &fs[i]
		if f.Kind != ClassOldKey.String() || f.Client.IsZero() || strings.Contains(f.Detail, "device truth") {
			continue
		}
		ds, err := dt.DeviceSync(c2.ByID(f.Client))
		if err != nil {
			continue
		}
		for _, ts := range ds.Topics {
			if ts.Topic == f.Topic {
				f.Detail += fmt.Sprintf("; device truth: desired v%d, accepted v%d, confirmed v%d",
					ts.Desired, ts.Accepted, ts.Confirmed)
			}
		}
	}
}
