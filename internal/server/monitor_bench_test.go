package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/client/e4mqtt"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/server"
	"github.com/e4c2/e4c2/internal/testwait"
)

// BenchmarkMonitorLatency measures, in one run, with the monitor off and
// on (embedded broker, standard SK, 1 KiB payloads): the latency of a
// device-to-device message (protect, publish QoS 1, broker, tap, deliver,
// open) and of a C2 command (rotate a topic until the device holds the new
// key). Reported: p50 and p99 in microseconds. Each op is one message;
// every 20th op is also a rotation.
func BenchmarkMonitorLatency(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "monitor=off"
		if on {
			name = "monitor=on"
		}
		b.Run(name, func(b *testing.B) { benchLatency(b, on) })
	}
}

func benchLatency(b *testing.B, monitorOn bool) {
	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	cfg.HTTPListen, cfg.MQTTListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Monitor.Enabled = monitorOn
	srv, err := server.Start(context.Background(), cfg, server.Options{Out: io.Discard, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	ctx := context.Background()
	svc := srv.Service()
	o := c2.Origin{Actor: "bench"}
	url := "tcp://" + srv.MQTTAddr()
	const topic = "bench/latency"
	if _, err := svc.NewTopic(ctx, o, topic); err != nil {
		b.Fatal(err)
	}
	received := make(chan struct{}, 1)
	connect := func(name string, onMsg func(e4mqtt.Message)) (*client.Client, *e4mqtt.Device) {
		c := server.RegisterTestDevice(b, ctx, svc, o, name, domain.RoleBoth, nil)
		d, err := e4mqtt.Connect(ctx, c, e4mqtt.Config{BrokerURL: url, CleanSession: true, OnMessage: onMsg})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := svc.NewTopicClient(ctx, o, c2.ByName(name), topic); err != nil {
			b.Fatal(err)
		}
		return c, d
	}
	pubC, pub := connect("bench-pub", func(e4mqtt.Message) {})
	defer pub.Close()
	subC, sub := connect("bench-sub", func(m e4mqtt.Message) {
		if !m.Command && m.Err == nil {
			select {
			case received <- struct{}{}:
			default:
			}
		}
	})
	defer sub.Close()
	waitFor := func(what string, cond func() bool) { testwait.For(b, what, cond) }
	waitFor("keys", func() bool { return topicKey(pubC, topic) != nil && topicKey(subC, topic) != nil })
	if err := sub.Subscribe(ctx, topic); err != nil {
		b.Fatal(err)
	}
	payload := bytes.Repeat([]byte{0x42}, 1024)
	var msgLat, cmdLat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		copy(payload, fmt.Sprintf("%012d", i))
		t0 := time.Now()
		if err := pub.Publish(ctx, topic, payload); err != nil {
			b.Fatal(err)
		}
		testwait.Ready(b, "the message", received)
		msgLat = append(msgLat, time.Since(t0))
		if i%20 == 19 {
			old := topicKey(subC, topic)
			t0 := time.Now()
			if _, err := svc.RotateTopic(ctx, o, topic); err != nil {
				b.Fatal(err)
			}
			waitFor("rotation", func() bool {
				k := topicKey(subC, topic)
				return k != nil && !bytes.Equal(k, old) && bytes.Equal(k, topicKey(pubC, topic))
			})
			cmdLat = append(cmdLat, time.Since(t0))
		}
	}
	b.StopTimer()
	report := func(lat []time.Duration, unit string) {
		if len(lat) == 0 {
			return
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), unit+"-p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), unit+"-p99-µs")
	}
	report(msgLat, "msg")
	report(cmdLat, "cmd")
	if monitorOn {
		if st := srv.Monitor().Stats(); st.Classified == 0 || st.Dropped != 0 {
			b.Fatalf("monitor stats: classified %d, dropped %d", st.Classified, st.Dropped)
		}
	}
}
