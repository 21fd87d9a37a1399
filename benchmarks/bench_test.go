package benchmarks

import (
	"context"
	"flag"
	"io"
	"os"
	"testing"
	"time"
)

// The target benchmarks start a whole C2 and thousands of devices: run them
// with -benchtime=1x (each iteration of b.N is one more timed rotation or
// round on the same setup, and the setup is not repeated within one run):
//
//	go test -run '^$' -bench . -benchtime=1x ./benchmarks/
var (
	flagDevices       = flag.Int("bench.devices", 10_000, "devices of BenchmarkFanout*")
	flagProfile       = flag.String("bench.rotation-profile", "", "write a CPU profile of the timed rotations of BenchmarkFanout* to this file")
	flagWindow        = flag.Int("bench.window", 0, "delivery window of BenchmarkFanout* (0: the server's default)")
	flagMemClients    = flag.Int("bench.clients", 100_000, "clients of BenchmarkC2Memory")
	flagAuditMax      = flag.Int("bench.audit-max", 0, "c2.Config.AuditMax of BenchmarkC2Memory (0: unlimited, the server's current setting)")
	flagAttachOps     = flag.Int("bench.attach-ops", 10_000, "operations of BenchmarkAttach8")
	flagAttachDevices = flag.Int("bench.attach-devices", 1_000, "connected devices of BenchmarkAttach8")
)

func benchFanout(b *testing.B, broker string) {
	var prof io.Writer
	if *flagProfile != "" {
		f, err := os.Create(*flagProfile)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		prof = f
	}
	res, err := Fanout(context.Background(), FanoutOptions{Profile: prof,
		Devices: *flagDevices, Window: *flagWindow, Broker: broker, Rotations: b.N, Dir: b.TempDir(), Farm: testFarm,
	})
	if err != nil {
		b.Fatal(err)
	}
	best := res.Best()
	b.Logf("%s, %d devices: setup %v, all hold %v, confirmed %v, request %v",
		broker, res.Devices, res.Setup.Round(time.Millisecond), res.AllHold, res.Confirmed, res.Request)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(best.Seconds(), "s-all-hold")
	b.ReportMetric(res.Confirmed[len(res.Confirmed)-1].Seconds(), "s-confirmed")
	b.ReportMetric(float64(res.Devices)/best.Seconds(), "devices/s")
	// Same-run baselines: the rotation request alone (durable decide and
	// append), and the device library's total apply time.
	b.ReportMetric(float64(res.Request[0].Microseconds())/1e3, "ms-request")
	b.ReportMetric(res.ApplyMS, "ms-device-apply-total")
	// The reference publishes 2,300 commands/s without confirmation: the
	// time it would take for N devices, over ours.
	b.ReportMetric((float64(res.Devices)/referenceRate)/best.Seconds(), "x-vs-reference")
	if res.DeviceErrors != 0 {
		b.Fatalf("%d device errors", res.DeviceErrors)
	}
	if broker == "embedded" && res.Devices >= 10_000 && best > 2*time.Second {
		b.Logf("TARGET MISSED: %d devices in %v (target <= 2 s)", res.Devices, best)
	}
}

// BenchmarkFanout is the fan-out target: rotation of a topic with
// -bench.devices (10,000) linked, connected devices until every device
// holds the new key, through the embedded broker. Target <= 2 s.
func BenchmarkFanout(b *testing.B) { benchFanout(b, "embedded") }

// BenchmarkFanoutMosquitto is the same through an external mosquitto.
func BenchmarkFanoutMosquitto(b *testing.B) { benchFanout(b, "mosquitto") }

// BenchmarkC2Memory is the memory target: the RSS of a C2 with
// -bench.clients (100,000) registered clients. Target <= 300 MB.
func BenchmarkC2Memory(b *testing.B) {
	for range b.N {
		res, err := Memory(context.Background(), b.TempDir(), *flagMemClients, *flagAuditMax, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(float64(res.RSS)/1e6, "MB-rss")
		b.ReportMetric(float64(res.Base)/1e6, "MB-rss-before-start")
		b.ReportMetric(float64(res.Sys)/1e6, "MB-sys")
		b.ReportMetric(float64(res.HeapInuse)/1e6, "MB-heap")
		b.ReportMetric(res.Start.Seconds(), "s-start")
		b.ReportMetric(res.Setup.Seconds(), "s-register")
		if res.RSS > 300e6 {
			b.Logf("TARGET MISSED: RSS %d MB with %d clients (target <= 300 MB)", res.RSS/1e6, res.Clients)
		}
	}
}

// BenchmarkAttach8 is the contention target: new_topic_client with 8
// concurrent callers, each event durable before the reply, delivered
// through the embedded broker to connected devices. Targets >= 2,500
// ops/s and p99 <= 50 ms.
func BenchmarkAttach8(b *testing.B) { benchAttach(b, false, false) }

// BenchmarkAttach8Spread is BenchmarkAttach8 with consecutive operations
// on different topics (8 or more), so callers rarely race on one stream.
func BenchmarkAttach8Spread(b *testing.B) { benchAttach(b, true, false) }

// BenchmarkAttach8LockTopic is BenchmarkAttach8 with a per-topic lock
// taken by the callers: what a C2 serializing its decisions per stream
// would do (see the README's bottlenecks).
func BenchmarkAttach8LockTopic(b *testing.B) { benchAttach(b, false, true) }

func benchAttach(b *testing.B, spread, lock bool) {
	for range b.N {
		res, err := Attach(context.Background(), AttachOptions{
			Spread: spread, LockTopic: lock, Devices: *flagAttachDevices, Ops: *flagAttachOps, Callers: 8, Dir: b.TempDir(), Farm: testFarm,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(float64(res.Failed), "failed-ops")
		if res.Failed > 0 {
			b.Errorf("%d of %d operations failed on contention (want 0), e.g. %s", res.Failed, res.Ops, res.FirstFailure)
		}
		b.ReportMetric(res.OpsPerSec, "ops/s")
		b.ReportMetric(float64(res.P50.Microseconds())/1e3, "ms-p50")
		b.ReportMetric(float64(res.P99.Microseconds())/1e3, "ms-p99")
		b.ReportMetric(res.Delivered.Seconds(), "s-all-delivered")
		// Same-run baseline: one write + fsync in the store's directory.
		b.ReportMetric(float64(res.Fsync.Microseconds())/1e3, "ms-fsync-baseline")
		b.ReportMetric(float64(res.P99)/float64(res.Fsync), "x-p99-vs-fsync")
		if res.OpsPerSec < 2500 || res.P99 > 50*time.Millisecond {
			b.Logf("TARGET MISSED: %.0f ops/s (>= 2500), p99 %v (<= 50 ms)", res.OpsPerSec, res.P99)
		}
	}
}
