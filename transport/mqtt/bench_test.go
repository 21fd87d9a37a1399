package mqtt

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// BenchmarkDeliver measures end-to-end delivery throughput: b.N queued
// commands to 256 clients, published by a Worker with the given window, and
// counted by a QoS 2 paho subscriber on "e4/#" (the run ends when it has
// received all). The embedded broker runs without persistence and with a
// per-client queue large enough for the single subscriber that receives
// every command (a device receives only its own). The subscriber is the
// slowest part end to end, so "confirmed/s" (the worker's throughput) is
// where the window shows; "msgs/s" is end to end.
//
//	go test -run '^$' -bench Deliver -benchtime 20000x ./transport/mqtt/
func BenchmarkDeliver(b *testing.B) {
	for _, kind := range []string{"embedded-inprocess", "embedded-tcp", "mosquitto"} {
		for _, window := range []int{1, 16, 64} {
			if kind == "mosquitto" && window > DefaultWindowExternal {
				continue // past mosquitto's default max_inflight_messages
			}
			b.Run(fmt.Sprintf("%s/window=%d", kind, window), func(b *testing.B) {
				benchDeliver(b, kind, window, true)
			})
		}
	}
}

// BenchmarkPublish is BenchmarkDeliver without a subscriber: the worker's
// own throughput up to the broker's confirmation, where the window matters
// most (one unconfirmed publish at a time is round-trip bound).
func BenchmarkPublish(b *testing.B) {
	for _, kind := range []string{"embedded-inprocess", "embedded-tcp", "mosquitto"} {
		for _, window := range []int{1, 16, 64} {
			if kind == "mosquitto" && window > DefaultWindowExternal {
				continue
			}
			b.Run(fmt.Sprintf("%s/window=%d", kind, window), func(b *testing.B) {
				benchDeliver(b, kind, window, false)
			})
		}
	}
}

func benchDeliver(b *testing.B, kind string, window int, withSub bool) {
	env := newBenchEnv(b, kind)
	var got atomic.Int64
	done := make(chan struct{})
	if withSub {
		target := int64(b.N)
		o := paho.NewClientOptions().AddBroker(env.url).SetClientID(subscriberID()).
			SetCleanSession(true).SetDefaultPublishHandler(func(_ paho.Client, _ paho.Message) {
			if got.Add(1) == target {
				close(done)
			}
		})
		sub := paho.NewClient(o)
		if tok := sub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			b.Fatalf("subscriber: %v", tok.Error())
		}
		defer sub.Disconnect(0)
		if tok := sub.Subscribe("e4/#", 2, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			b.Fatalf("subscribe: %v", tok.Error())
		}
	}

	src := newFakeSource()
	for i := range b.N {
		src.enqueue(i % 256)
	}
	cfg := Config{Window: window, Logger: quietLogger(), PollInterval: 10 * time.Millisecond}
	w := NewWorker(src, env.publisher(b), cfg)
	if w.Window() != window {
		b.Fatalf("window %d, want %d", w.Window(), window)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ResetTimer()
	start := time.Now()
	go func() { _ = w.Run(ctx) }()
	var pubElapsed time.Duration
	for pubElapsed == 0 {
		select {
		case <-done:
			pubElapsed = time.Since(start) // confirmed before received
		case <-time.After(time.Millisecond):
			if w.Stats().Delivered == uint64(b.N) {
				pubElapsed = time.Since(start)
			}
		}
	}
	if !withSub {
		b.StopTimer()
		b.ReportMetric(float64(b.N)/pubElapsed.Seconds(), "confirmed/s")
		return
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("received %d of %d", got.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	// confirmed/s: recorded delivered (broker confirmation) per second;
	// msgs/s: received by the subscriber per second, end to end.
	b.ReportMetric(float64(b.N)/pubElapsed.Seconds(), "confirmed/s")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	if st := w.Stats(); st.Failed != 0 {
		b.Fatalf("stats %+v", st)
	}
}

// newBenchEnv is newEnv without broker persistence (it measures the
// delivery path, not the disk).
func newBenchEnv(b *testing.B, kind string) *brokerEnv {
	if kind == "mosquitto" {
		m := startMosquitto(b, false)
		return &brokerEnv{name: kind, url: m.URL(), publisher: func(t testing.TB) Publisher {
			return newPaho(t, PahoConfig{BrokerURL: m.URL()})
		}}
	}
	env := newEnvOpts(b, kind, false)
	return env
}
