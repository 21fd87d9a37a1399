package monitor

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/testwait"
	"github.com/e4c2/e4c2/suites/core"
)

// TestFindingsAggregatedPerWindow: many forged messages and one old-key
// message in a window give one event each, with the counts; the next
// window opens anew.
func TestFindingsAggregatedPerWindow(t *testing.T) {
	for _, f := range fixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			svc := newFakeService(f, "plant/t1")
			now := f.now
			m, err := New(Config{Service: svc, FindingWindow: time.Minute, Clock: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			good := f.protect(t, f.keys.Current, "alice", []byte("reading 1"), now)
			if v := m.Process(Message{Topic: "plant/t1", Payload: good}); v.Class != ClassCurrent {
				t.Fatalf("good message: %s", v.Class)
			}
			dev := domain.ID(f.suite.ID("dev"))
			for i := range 7 {
				bad := f.protect(t, f.keys.Current, "alice", fmt.Appendf(nil, "reading %d", i), now)
				bad[len(bad)-1] ^= 0x80
				m.Process(Message{Topic: "plant/t1", Payload: bad, Client: dev, HasClient: true})
			}
			m.Process(Message{Topic: "plant/t1", Payload: f.protect(t, f.keys.Older[0], "alice", []byte("old"), now)})
			m.Process(Message{Topic: "elsewhere", Payload: good}) // unmanaged: ignored
			m.Tick(ctx, now.Add(30*time.Second))
			if got := svc.recorded(); len(got) != 0 {
				t.Fatalf("findings recorded before the window closed: %+v", got)
			}
			now = now.Add(61 * time.Second)
			m.Tick(ctx, now)
			got := svc.recorded()
			byKind := map[string]domain.MonitorFinding{}
			for _, x := range got {
				if _, dup := byKind[x.Kind]; dup {
					t.Fatalf("two %s findings in one window", x.Kind)
				}
				byKind[x.Kind] = x
			}
			forged := byKind["forged"]
			if len(got) != 2 || forged.Count != 7 || byKind["old_key"].Count != 1 || byKind["old_key"].KeyVersion != 2 {
				t.Fatalf("findings: %+v", got)
			}
			if forged.Topic != domain.TopicHash("plant/t1") || forged.WindowEnd-forged.WindowStart != 60 {
				t.Fatalf("forged finding: %+v", forged)
			}
			if f.mode == core.SymKey && forged.Client != dev {
				t.Fatalf("forged finding names %s, want the publishing device", forged.Client)
			}
			m.Tick(ctx, now.Add(2*time.Minute))
			if len(svc.recorded()) != 2 {
				t.Fatal("findings recorded twice")
			}
			st := m.Stats()
			if st.Classified != 9 || st.Unmanaged != 1 || len(st.Topics) != 1 || st.Topics[0].Classes["forged"] != 7 {
				t.Fatalf("stats: %+v", st)
			}
		})
	}
}

// TestReplayDetected: the same protected message twice is a replay the
// second time, once per window in the findings.
func TestReplayDetected(t *testing.T) {
	f := newFixture(t, fixtures(t)[0].suite, core.SymKey)
	svc := newFakeService(f, "t")
	m, err := New(Config{Service: svc, Clock: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	p := f.protect(t, f.keys.Current, "", []byte("open the valve"), f.now)
	for i, want := range []Class{ClassCurrent, ClassReplay, ClassReplay} {
		if v := m.Process(Message{Topic: "t", Payload: p}); v.Class != want {
			t.Fatalf("copy %d: %s, want %s", i, v.Class, want)
		}
	}
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := svc.recorded(); len(got) != 1 || got[0].Kind != "replay" || got[0].Count != 2 {
		t.Fatalf("findings: %+v", got)
	}
}

// TestQueueFullSamples: Offer never blocks; past the queue's capacity the
// messages are counted as dropped and reported as a sampled finding.
func TestQueueFullSamples(t *testing.T) {
	f := fixtures(t)[0]
	svc := newFakeService(f, "t")
	m, err := New(Config{Service: svc, QueueSize: 4, Clock: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for range 10 {
		if m.Offer(Message{Topic: "t", Payload: []byte("x")}) {
			accepted++
		}
	}
	st := m.Stats()
	if accepted != 4 || st.Dropped != 6 || st.Offered != 10 || st.QueueLen != 4 {
		t.Fatalf("accepted %d, stats %+v", accepted, st)
	}
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := svc.recorded(); len(got) != 1 || got[0].Kind != "sampled" || got[0].Count != 6 {
		t.Fatalf("findings: %+v", got)
	}
}

// TestRateAnomalyOnGeneratedTraffic generates Poisson-like traffic around
// 100 messages per 10 s bucket, then a burst of 4x, then silence: the
// baseline must report the spike and the drop and nothing in the normal
// traffic.
func TestRateAnomalyOnGeneratedTraffic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	b := NewBaseline(BaselineConfig{})
	normal := func() float64 { return float64(100 + rng.IntN(21) - 10) } // 90..110
	for i := range 200 {
		if a, mean, band := b.Observe(normal()); a != Normal {
			t.Fatalf("bucket %d of normal traffic flagged %d (baseline %.1f±%.1f)", i, a, mean, band)
		}
	}
	if a, _, _ := b.Observe(400); a != Spike {
		t.Fatalf("a burst of 4x: %d, want a spike", a)
	}
	if a, _, _ := b.Observe(0); a != Drop {
		t.Fatalf("silence: %d, want a drop", a)
	}
	// The burst and the silence barely moved the baseline.
	if a, mean, _ := b.Observe(normal()); a != Normal || mean < 80 || mean > 120 {
		t.Fatalf("normal traffic after the anomalies: %d, mean %.1f", a, mean)
	}
	// A lasting change becomes the new normal.
	flagged := 0
	for range 300 {
		if a, _, _ := b.Observe(300); a != Normal {
			flagged++
		}
	}
	if flagged == 0 || flagged == 300 {
		t.Fatalf("a lasting change to 3x was flagged %d times of 300: want some, then the new normal", flagged)
	}
}

// TestRateAnomalyFinding: the monitor turns an anomalous bucket into one
// rate_spike finding for the topic.
func TestRateAnomalyFinding(t *testing.T) {
	f := newFixture(t, fixtures(t)[0].suite, core.SymKey)
	svc := newFakeService(f, "t")
	now := f.now
	m, err := New(Config{Service: svc, RateBucket: 10 * time.Second, Baseline: BaselineConfig{Warmup: 6},
		Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	msg := bytes.Repeat([]byte{1}, 32)
	n := 0
	send := func(k int) {
		for range k {
			n++
			copy(msg, fmt.Sprint(n))
			m.Process(Message{Topic: "t", Payload: f.protect(t, f.keys.Current, "", msg, now)})
		}
	}
	for range 10 {
		send(20)
		now = now.Add(10 * time.Second)
		m.Tick(ctx, now)
	}
	send(200)
	now = now.Add(10 * time.Second)
	m.Tick(ctx, now)
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := svc.recorded()
	if len(got) != 1 || got[0].Kind != "rate_spike" || got[0].Count != 1 {
		t.Fatalf("findings: %+v", got)
	}
	if st := m.Stats(); st.Topics[0].Rate != 20 {
		t.Fatalf("rate of the last bucket: %v, want 20/s", st.Topics[0].Rate)
	}
}

// TestRelayNamesThePublisher: in PK mode, a device that republishes a
// message another device signed (a replay, or an old message) is the
// client of the finding when the broker names the publisher: the signer
// id inside the payload is anybody's to copy, so it must not frame the
// device that signed.
func TestRelayNamesThePublisher(t *testing.T) {
	for _, f := range fixtures(t) {
		if f.mode != core.PubKey {
			continue
		}
		t.Run(f.name, func(t *testing.T) {
			svc := newFakeService(f, "plant/t1")
			m, err := New(Config{Service: svc, Clock: func() time.Time { return f.now }})
			if err != nil {
				t.Fatal(err)
			}
			alice, bob := domain.ID(f.suite.ID("alice")), domain.ID(f.suite.ID("bob"))
			p := f.protect(t, f.keys.Current, "alice", []byte("open the valve"), f.now)
			if v := m.Process(Message{Topic: "plant/t1", Payload: p, Client: alice, HasClient: true}); v.Class != ClassCurrent {
				t.Fatalf("alice's message: %s", v.Class)
			}
			if v := m.Process(Message{Topic: "plant/t1", Payload: p, Client: bob, HasClient: true}); v.Class != ClassReplay {
				t.Fatalf("bob's copy: %s", v.Class)
			}
			old := f.protect(t, f.keys.Older[0], "alice", []byte("old"), f.now)
			m.Process(Message{Topic: "plant/t1", Payload: old, Client: bob, HasClient: true})
			if err := m.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := svc.recorded()
			if len(got) != 2 {
				t.Fatalf("findings: %+v", got)
			}
			for _, x := range got {
				if x.Client != bob {
					t.Errorf("%s finding names %s, want the publisher %s (bob)", x.Kind, x.Client, bob)
				}
				if !strings.Contains(x.Detail, alice.String()) {
					t.Errorf("%s finding detail %q does not name the signer", x.Kind, x.Detail)
				}
			}
			st := m.Stats()
			for _, c := range st.Clients {
				if c.Client == alice && c.Classes["replay"] != 0 {
					t.Errorf("alice is counted for bob's replay: %+v", c)
				}
			}
		})
	}
}

// TestQueueBoundedInBytes: the queue holds at most QueueBytes of payload
// whatever its length in messages: a device publishing large messages
// faster than they are classified cannot make the monitor keep gigabytes
// (4096 messages of the broker's 1 MiB packet limit) in memory.
func TestQueueBoundedInBytes(t *testing.T) {
	f := fixtures(t)[0]
	svc := newFakeService(f, "t")
	m, err := New(Config{Service: svc, QueueSize: 4096, QueueBytes: 1 << 20, Clock: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 256<<10)
	accepted := 0
	for range 10 {
		if m.Offer(Message{Topic: "t", Payload: big}) {
			accepted++
		}
	}
	if st := m.Stats(); accepted != 4 || st.Dropped != 6 {
		t.Fatalf("accepted %d of 10 messages of 256 KiB under a 1 MiB bound, stats %+v", accepted, st)
	}
	// Classified messages give their room back.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	testwait.For(t, "the queue to drain", func() bool { return m.Stats().QueueLen == 0 })
	testwait.For(t, "room for a large message again", func() bool { return m.Offer(Message{Topic: "t", Payload: big}) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
