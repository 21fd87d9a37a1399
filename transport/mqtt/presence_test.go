package mqtt

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/e4c2/e4c2/internal/testwait"
)

// fakeDevices is a DevicePublisher: a fakePublisher whose messages reach a
// device only while it is online. A Deliver to an offline device, or one
// that goes offline while the exchange is pending (dropNext), fails with
// ErrOffline.
type fakeDevices struct {
	*fakePublisher
	mu       sync.Mutex
	online   map[[16]byte]bool
	dropNext map[[16]byte]int // the next n deliveries to it see the device leave
	offered  map[[16]byte]int // Deliver calls per device
}

func newFakeDevices(window int) *fakeDevices {
	return &fakeDevices{
		fakePublisher: newFakePublisher(window),
		online:        map[[16]byte]bool{},
		dropNext:      map[[16]byte]int{},
		offered:       map[[16]byte]int{},
	}
}

func (d *fakeDevices) Online(id [16]byte) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.online[id]
}

func (d *fakeDevices) setOnline(id [16]byte, v bool) {
	d.mu.Lock()
	d.online[id] = v
	d.mu.Unlock()
}

func (d *fakeDevices) Deliver(ctx context.Context, id [16]byte, payload []byte) (Evidence, error) {
	d.mu.Lock()
	d.offered[id]++
	on := d.online[id]
	drop := d.dropNext[id] > 0
	if drop {
		d.dropNext[id]--
		d.online[id] = false
	}
	d.mu.Unlock()
	if !on || drop {
		return 0, fmt.Errorf("fake: %w", ErrOffline)
	}
	return Confirmed, d.Publish(ctx, ControlTopic(id), payload)
}

func (d *fakeDevices) offeredTo(id [16]byte) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.offered[id]
}

// A device that never connected gets nothing handed to the broker; its
// commands wait in the source, and all of them go out, in order, confirmed,
// once it comes online.
func TestWorkerHoldsCommandsOfOfflineDevices(t *testing.T) {
	src := newFakeSource()
	pub := newFakeDevices(8)
	on, off := clientID(1), clientID(2)
	pub.setOnline(on, true)
	var forOff []Item
	for i := range 6 {
		src.enqueue(1)
		if i%2 == 0 {
			forOff = append(forOff, src.enqueue(2))
		}
	}
	w := NewWorker(src, pub, fastConfig())
	runWorker(t, w)
	testwait.For(t, "online device served", func() bool { return src.count("delivered confirmed") == 6 })
	// The poll keeps running; the offline device is never offered anything.
	testwait.For(t, "a few polls", func() bool {
		src.enqueue(1)
		return src.count("delivered") >= 9
	})
	if n := pub.offeredTo(off); n != 0 {
		t.Fatalf("offline device was offered %d messages", n)
	}
	for _, it := range forOff {
		if st := src.stateOf(it.Seq); st != "" {
			t.Fatalf("command %s of the offline device is %q", it.Ref, st)
		}
	}
	pub.setOnline(off, true)
	w.Wake(off)
	testwait.For(t, "offline device served after Wake", func() bool {
		for _, it := range forOff {
			if src.stateOf(it.Seq) != "delivered confirmed" {
				return false
			}
		}
		return true
	})
	got, viol, _ := pub.snapshot()
	if len(viol) > 0 {
		t.Fatalf("violations: %v", viol)
	}
	checkOrder(t, got, nil)
	if st := w.Stats(); st.Retries != 0 || st.Failed != 0 {
		t.Fatalf("waiting for a device counted as failure: %+v", st)
	}
}

// A device that leaves in the middle of an exchange keeps its queue, in
// order, with no attempt counted against it, and gets it when it is back.
func TestWorkerParksQueueWhenDeviceLeaves(t *testing.T) {
	src := newFakeSource()
	pub := newFakeDevices(4)
	id := clientID(7)
	pub.setOnline(id, true)
	pub.dropNext[id] = 1
	var all []Item
	for range 5 {
		all = append(all, src.enqueue(7))
	}
	cfg := fastConfig()
	cfg.MaxAttempts = 1 // a counted attempt would fail the item at once
	w := NewWorker(src, pub, cfg)
	runWorker(t, w)
	testwait.For(t, "queue set aside", func() bool { return w.Stats().Parked == 1 })
	if n := src.count("delivered"); n != 0 {
		t.Fatalf("%d delivered while the device was away", n)
	}
	pub.setOnline(id, true)
	w.Wake(id)
	testwait.For(t, "all delivered", func() bool { return src.count("delivered confirmed") == len(all) })
	got, _, _ := pub.snapshot()
	checkOrder(t, got, all)
	if st := w.Stats(); st.Failed != 0 || st.Retries != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// An offline consumer does not hold a rotation's publishers back: the phase
// barrier only counts devices that can receive now.
func TestWorkerOfflineConsumerDoesNotBlockRotation(t *testing.T) {
	src := newFakeSource()
	pub := newFakeDevices(4)
	consumer, publisher := clientID(1), clientID(2)
	pub.setOnline(publisher, true)
	a := src.enqueue(1)
	b := src.enqueue(2)
	src.mu.Lock()
	for i := range src.items {
		src.items[i].Group = 99
		if src.items[i].ClientID == publisher {
			src.items[i].Phase = 2
		}
	}
	src.mu.Unlock()
	w := NewWorker(src, pub, fastConfig())
	runWorker(t, w)
	testwait.For(t, "publisher served", func() bool { return src.stateOf(b.Seq) == "delivered confirmed" })
	if src.stateOf(a.Seq) != "" {
		t.Fatal("offline consumer's command settled")
	}
	_ = consumer
}
