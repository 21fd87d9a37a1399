package server

import (
	"bytes"
	"flag"
	"fmt"
	nethttp "net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e4c2/e4c2/client/e4mqtt"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/lease"
	"github.com/e4c2/e4c2/internal/testbroker"
	"github.com/e4c2/e4c2/internal/testwait"
)

var fanoutDevices = flag.Int("fanout.devices", 200, "devices attached to the topic of BenchmarkFanoutInstances")

const fanoutTopic = "bench/fanout"

// BenchmarkFanoutInstances compares, in one run, the fan-out of a topic-key
// rotation on the embedded store (one instance) and on a real 3-node
// JetStream cluster (replication 3) with one and with three instances:
//
//	go test -run '^$' -bench BenchmarkFanoutInstances -benchtime 10x -count 5 ./internal/server/
//
// (-count repeats each configuration back to back; for ratios between
// configurations measured close in time, as the README's, run the command
// with -count 1 several times.)
// -fanout.devices (default 200) device-library devices connect with the
// acknowledgement extension to one external mosquitto and are attached to
// one topic. One iteration is one rotate of the topic key through the API
// (round-robin over the instances), timed until every device holds the
// new key in its own state and the instance that took the rotation counts
// every device's confirmation (the device's ack, appended to the log by
// the delivery-lease holder and applied by each instance). With three
// instances only the lease holder delivers: a rotation taken by another
// instance reaches it through the replicated log. Rotations follow one
// another (one in flight), so the figure is the latency of a whole
// fan-out, not the throughput of overlapping ones. Every instance, NATS
// node, the broker and the devices share this machine's cores.
func BenchmarkFanoutInstances(b *testing.B) {
	if testing.Short() {
		b.Skip("whole C2s, a NATS cluster, mosquitto and a device fleet: not under -short")
	}
	for _, tc := range []struct {
		name      string
		instances int
		jetstream bool
	}{{"embedded-1", 1, false}, {"jetstream-1", 1, true}, {"jetstream-3", 3, true}} {
		b.Run(tc.name, func(b *testing.B) {
			f := startFanout(b, tc.instances, tc.jetstream, *fanoutDevices)
			var total time.Duration
			rotations := 0
			// By whether the instance that took the rotation holds the
			// delivery lease (0) or not (1): the second adds the trip
			// through the replicated log to the holder.
			var split [2]time.Duration
			var splitN [2]int
			// b.Loop runs this function once per -count: the fleet is
			// set up once, outside the timer, whatever -benchtime says.
			for b.Loop() {
				at := rotations % len(f.srvs)
				took := f.rotate(b, at)
				total += took
				rotations++
				i := 0
				if !f.deliversAt(at) {
					i = 1
				}
				split[i] += took
				splitN[i]++
			}
			b.ReportMetric(total.Seconds()*1000/float64(rotations), "ms/rotation")
			b.ReportMetric(float64(rotations)/total.Seconds(), "rotations/s")
			b.ReportMetric(float64(rotations*len(f.devs))/total.Seconds(), "devices/s")
			if splitN[0] > 0 && splitN[1] > 0 {
				b.ReportMetric(split[0].Seconds()*1000/float64(splitN[0]), "ms/rotation-at-holder")
				b.ReportMetric(split[1].Seconds()*1000/float64(splitN[1]), "ms/rotation-at-other")
			}
		})
	}
}

// fanoutBench is the fleet of one configuration.
type fanoutBench struct {
	srvs  []*Server
	addrs []string
	token string
	devs  []*rdev
	key   []byte // the topic key every device holds between rotations

	// round numbers the rotations; held counts the devices whose own state
	// left prev since round began (each device's onCommand hook).
	round atomic.Uint64
	held  atomic.Int64
	prev  atomic.Pointer[[]byte]
}

// startFanout starts the instances, the broker and n connected devices
// attached to fanoutTopic, and waits until every device holds the topic's
// first key and every instance counts their confirmations.
func startFanout(b *testing.B, instances int, jetstream bool, n int) *fanoutBench {
	b.Helper()
	mq := testbroker.StartMosquitto(b, 0) // skips when mosquitto is missing
	srvs, token := startBenchInstances(b, instances, jetstream, func(c *config.Config) {
		// Acks: the devices confirm each command themselves, and they get
		// commands only while online (no deliver-unseen).
		c.Broker, c.DeviceAcks, c.DeliverUnseen = mq.URL(), true, false
	})
	f := &fanoutBench{srvs: srvs, addrs: benchAddrs(srvs), token: token}
	for _, a := range f.addrs {
		testwait.For(b, "instance "+a+" ready", func() bool {
			st, _, _ := haDo(b, nethttp.MethodGet, "http://"+a+"/readyz", "", nil, 0)
			return st == nethttp.StatusOK
		})
	}
	svc := srvs[0].Service()
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("fan-%04d", i)
		d := registerDevice(b, svc, names[i])
		d.onCommand = f.hook(d)
		f.devs = append(f.devs, d)
	}
	// One by one: a connection waits for the broker's CONNACK and a
	// failure must stop the benchmark from its own goroutine.
	for _, d := range f.devs {
		d.connectWith(b, e4mqtt.Config{BrokerURL: mq.URL(), Acks: true})
	}
	if _, err := svc.NewTopic(opContext(b), resOrigin, fanoutTopic); err != nil {
		b.Fatal(err)
	}
	if st, body, _ := haDo(b, nethttp.MethodPost, "http://"+f.addrs[0]+"/api/v1/batch/attach", token,
		map[string]any{"topic": fanoutTopic, "clients": names}, 0); st != nethttp.StatusOK {
		b.Fatalf("attach: %d %s", st, body)
	}
	first := exportKey(b, svc, fanoutTopic)
	testwait.For(b, "every device to hold the first key", func() bool {
		for _, d := range f.devs {
			if !bytes.Equal(d.key(fanoutTopic), first) {
				return false
			}
		}
		return true
	})
	f.key = first
	f.settle(b, uint64(n))
	return f
}

// hook is d's onCommand: the first command of a round after which the
// device's own state holds a key other than the one before the rotation
// counts the device as holding the new key (which key it is, is checked
// against the C2's after the clock stops).
func (f *fanoutBench) hook(d *rdev) func() {
	var counted uint64 // rounds are counted once per device; d.mu is held
	return func() {
		r := f.round.Load()
		if r == 0 || counted == r {
			return
		}
		if p := f.prev.Load(); p != nil && !bytes.Equal(d.key(fanoutTopic), *p) {
			counted = r
			f.held.Add(1)
		}
	}
}

// rotate rotates the topic key through instance at and returns the time
// until every device holds the new key and that instance counts every
// device's confirmation. The check of the keys against the C2's, and the
// wait for every instance to apply the confirmations, are outside the
// timer.
func (f *fanoutBench) rotate(b *testing.B, at int) time.Duration {
	b.Helper()
	svc := f.srvs[at].Service()
	before := svc.Confirmations()
	prev := f.key
	f.prev.Store(&prev)
	f.held.Store(0)
	f.round.Add(1)
	n := int64(len(f.devs))
	start := time.Now()
	st, body, _ := haDo(b, nethttp.MethodPost, "http://"+f.addrs[at]+"/api/v1/topics/"+url.PathEscape(fanoutTopic)+"/rotate", f.token, nil, 0)
	if st != nethttp.StatusOK {
		b.Fatalf("rotate through instance %d: %d %s", at+1, st, body)
	}
	deadline := start.Add(2 * testwait.Timeout)
	for f.held.Load() < n || svc.Confirmations()-before < uint64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("rotation %d through instance %d: %d of %d devices hold a new key, %d confirmations, %d commands pending, after %v",
				f.round.Load(), at+1, f.held.Load(), n, svc.Confirmations()-before, svc.PendingCount(), 2*testwait.Timeout)
		}
		// A poll of two counters, not a synchronization: 1 ms is the
		// resolution of the figure (a fan-out takes hundreds).
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	b.StopTimer()
	defer b.StartTimer()
	want := exportKey(b, svc, fanoutTopic)
	if bytes.Equal(want, prev) {
		b.Fatal("the rotation left the topic key unchanged")
	}
	for _, d := range f.devs {
		d.failOnErrors(b)
		if !bytes.Equal(d.key(fanoutTopic), want) {
			b.Fatalf("device %s holds a key that is not the C2's newest", d.name)
		}
	}
	f.key = want
	f.settle(b, before+uint64(n))
	return took
}

// deliversAt reports whether instance at holds the delivery lease (on the
// embedded store its one instance delivers without a lease).
func (f *fanoutBench) deliversAt(at int) bool {
	for _, st := range f.srvs[at].LeaseStatus() {
		if st.Duty == DutyDelivery {
			return st.State == lease.Holder
		}
	}
	return true
}

// settle waits until every instance counts at least want confirmations
// and they all count the same, so that the next rotation's count starts
// from the instance's settled view, not from one still applying the log.
func (f *fanoutBench) settle(b *testing.B, want uint64) {
	b.Helper()
	testwait.For(b, "every instance to apply the confirmations", func() bool {
		first := f.srvs[0].Service().Confirmations()
		for _, s := range f.srvs {
			if c := s.Service().Confirmations(); c < want || c != first {
				return false
			}
		}
		return true
	})
}
