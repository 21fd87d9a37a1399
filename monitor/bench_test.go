package monitor

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// BenchmarkClassify measures the whole per-message path of a monitor
// worker (topic lookup, classification, replay check, counters) on 1 KiB
// messages under the current key, one goroutine: messages per second per
// core. Each message is distinct (its own timestamp) so the replay set
// works as on live traffic.
func BenchmarkClassify(b *testing.B) {
	msg := bytes.Repeat([]byte{0x5A}, 1024)
	for _, f := range fixtures(b) {
		b.Run(f.name, func(b *testing.B) {
			svc := newFakeService(f, "bench")
			clock := f.now
			m, err := New(Config{Service: svc, Clock: func() time.Time { return clock }})
			if err != nil {
				b.Fatal(err)
			}
			const distinct = 4096
			payloads := make([][]byte, distinct)
			b.SetBytes(int64(len(msg)))
			var cpu time.Duration // process CPU time of the timed parts
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%distinct == 0 {
					// A new round of distinct messages, made outside
					// the timer (signing is not the monitor's cost).
					b.StopTimer()
					cpu += cpuTime() - cpu0
					clock = clock.Add(20 * time.Minute)
					for j := range payloads {
						copy(msg, fmt.Sprintf("%016d-%08d", i, j))
						payloads[j] = f.protect(b, f.keys.Current, "alice", msg, clock)
					}
					cpu0 = cpuTime()
					b.StartTimer()
				}
				if v := m.Process(Message{Topic: "bench", Payload: payloads[i%distinct]}); v.Class != ClassCurrent {
					b.Fatalf("message %d: %s", i, v.Class)
				}
			}
			b.StopTimer()
			cpu += cpuTime() - cpu0
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			// Per core of CPU actually used: wall time overstates the
			// cost on a machine shared with other work.
			if cpu > 0 {
				b.ReportMetric(float64(b.N)/cpu.Seconds(), "msgs/cpu-s")
			}
		})
	}
}
