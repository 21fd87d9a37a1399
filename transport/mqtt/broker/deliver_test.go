package broker

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/e4c2/e4c2/internal/testwait"
)

func TestDeliverConfirmed(t *testing.T) {
	auth := newAuthority()
	a := auth.device(1)
	b := startBroker(t, Config{Authority: auth})
	ctx := t.Context()
	if err := b.Deliver(ctx, a, []byte("x")); !errors.Is(err, ErrOffline) {
		t.Fatalf("deliver to a device never seen: %v, want ErrOffline", err)
	}
	c, err := connect(t, b.Addr(), clientID(a), user(a), auth.password(a))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Deliver(ctx, a, []byte("x")); !errors.Is(err, ErrOffline) {
		t.Fatalf("deliver to a device not subscribed: %v, want ErrOffline", err)
	}
	r := subscribe(t, c, ControlTopic(a))
	for i := range 20 {
		if err := b.Deliver(ctx, a, []byte(strconv.Itoa(i))); err != nil {
			t.Fatalf("deliver %d: %v", i, err)
		}
		// paho hands the message to the handler before it sends PUBCOMP.
		if got := r.snapshot(); len(got) != i+1 || got[i] != ControlTopic(a)+"="+strconv.Itoa(i) {
			t.Fatalf("after deliver %d the device has %q", i, got)
		}
	}
	c.Disconnect(0)
	testwait.For(t, "offline", func() bool { return !b.Online(a) })
	if err := b.Deliver(ctx, a, []byte("x")); !errors.Is(err, ErrOffline) {
		t.Fatalf("deliver after disconnect: %v, want ErrOffline", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Deliver(ctx, a, []byte("x")); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("deliver on a stopped broker: %v, want ErrNotRunning", err)
	}
}

// Only the device's own PUBCOMP confirms: a device that got the PUBLISH
// but never answers, or stops after PUBREC, is not confirmed (even though
// a C2 monitor on the same topic completes at once), and its disconnect
// fails the call with ErrOffline. Nothing is left behind.
func TestDeliverNeedsDevicePUBCOMP(t *testing.T) {
	auth := newAuthority()
	a := auth.device(1)
	b := startBroker(t, Config{Authority: auth, C2: &Credentials{Username: "c2", Password: "pw"}})
	mon, err := connect(t, b.Addr(), "monitor", "c2", "pw")
	if err != nil {
		t.Fatal(err)
	}
	rm := subscribe(t, mon, "e4/#")
	goroutines := runtime.NumGoroutine()

	rc := deviceSubscribed(t, b, auth, a, 2)
	testwait.For(t, "online", func() bool { return b.Online(a) })

	// 1. No PUBREC at all.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	err = b.Deliver(ctx, a, []byte("one"))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deliver without PUBREC: %v, want a deadline error", err)
	}
	pk, rerr := rc.read(3 * time.Second)
	if rerr != nil || pk.FixedHeader.Type != packets.Publish || string(pk.Payload) != "one" || pk.FixedHeader.Qos != 2 {
		t.Fatalf("device did not get the QoS 2 PUBLISH: %v %+v", rerr, pk.FixedHeader)
	}
	if !contains(rm.snapshot(), ControlTopic(a)+"=one") {
		t.Fatalf("monitor did not get it: %q", rm.snapshot())
	}

	// 2. PUBREC but no PUBCOMP: still not confirmed; then PUBCOMP is.
	done := make(chan error, 1)
	go func() { done <- b.Deliver(t.Context(), a, []byte("two")) }()
	pk, rerr = rc.read(3 * time.Second)
	if rerr != nil || string(pk.Payload) != "two" {
		t.Fatalf("second publish: %v %q", rerr, pk.Payload)
	}
	if err := rc.ack(packets.Pubrec, pk.PacketID); err != nil {
		t.Fatal(err)
	}
	rel, rerr := rc.read(3 * time.Second)
	if rerr != nil || rel.FixedHeader.Type != packets.Pubrel || rel.PacketID != pk.PacketID {
		t.Fatalf("no PUBREL: %v %+v", rerr, rel.FixedHeader)
	}
	select {
	case err := <-done:
		t.Fatalf("deliver returned %v after PUBREC only", err)
	case <-time.After(100 * time.Millisecond): // a negative check: it must still be waiting
	}
	if err := rc.ack(packets.Pubcomp, pk.PacketID); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("deliver after PUBCOMP: %v", err)
	}

	// 3. PUBCOMP without PUBREC does not confirm.
	go func() { done <- b.Deliver(t.Context(), a, []byte("three")) }()
	pk, _ = rc.read(3 * time.Second)
	_ = rc.ack(packets.Pubcomp, pk.PacketID)
	if err := <-done; err == nil || errors.Is(err, ErrOffline) {
		t.Fatalf("deliver with PUBCOMP and no PUBREC: %v, want a failure", err)
	}

	// 4. The connection ends while waiting: ErrOffline, at once.
	go func() { done <- b.Deliver(t.Context(), a, []byte("four")) }()
	if pk, err := rc.read(3 * time.Second); err != nil || string(pk.Payload) != "four" {
		t.Fatalf("fourth publish: %v", err)
	}
	rc.conn.Close()
	if err := <-done; !errors.Is(err, ErrOffline) {
		t.Fatalf("deliver to a device that disconnected: %v, want ErrOffline", err)
	}

	testwait.For(t, "device table empty", func() bool { return b.devices.size() == 0 })
	testwait.For(t, "goroutines back", func() bool { return runtime.NumGoroutine() <= goroutines })
}

func TestDeliverNeedsQoS2Subscription(t *testing.T) {
	auth := newAuthority()
	a := auth.device(1)
	b := startBroker(t, Config{Authority: auth})
	deviceSubscribed(t, b, auth, a, 1)
	testwait.For(t, "online", func() bool { return b.Online(a) })
	err := b.Deliver(t.Context(), a, []byte("x"))
	if err == nil || errors.Is(err, ErrOffline) {
		t.Fatalf("deliver to a QoS 1 subscriber: %v, want a QoS error", err)
	}
}

// Many goroutines deliver to many devices at once: every call is
// confirmed, each device gets its messages in the order of its calls
// (one goroutine per device sequence), nothing leaks; a burst of timeouts
// leaves nothing behind either.
func TestDeliverConcurrent(t *testing.T) {
	const devices, perDevice, workers = 200, 5, 64
	auth := newAuthority()
	b := startBroker(t, Config{Authority: auth})
	ids := make([][16]byte, devices)
	got := make([][]string, devices)
	var mu sync.Mutex
	for i := range ids {
		ids[i] = auth.device(i)
		rc := mustDial(t, b.Addr(), rawConnect{version: 4, clientID: clientID(ids[i]), user: user(ids[i]), pass: auth.password(ids[i]), clean: true})
		rc.subscribe(t, 2, ControlTopic(ids[i]))
		go rc.serveQoS2(func(pk packets.Packet) {
			mu.Lock()
			got[i] = append(got[i], string(pk.Payload))
			mu.Unlock()
		})
	}
	testwait.For(t, "all online", func() bool {
		for _, id := range ids {
			if !b.Online(id) {
				return false
			}
		}
		return true
	})
	goroutines := runtime.NumGoroutine()
	jobs := make(chan int)
	errs := make(chan error, devices)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				for m := range perDevice {
					ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
					err := b.Deliver(ctx, ids[i], []byte(strconv.Itoa(m)))
					cancel()
					if err != nil {
						errs <- fmt.Errorf("device %d message %d: %w", i, m, err)
						break
					}
				}
			}
		})
	}
	for i := range ids {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	mu.Lock()
	for i, g := range got {
		if fmt.Sprint(g) != "[0 1 2 3 4]" {
			t.Errorf("device %d got %q", i, g)
		}
	}
	mu.Unlock()
	testwait.For(t, "goroutines back", func() bool { return runtime.NumGoroutine() <= goroutines })

	// Timeouts: cancel every call before its PUBCOMP can come (a context
	// already near its end); the waiters must all be gone afterwards.
	var twg sync.WaitGroup
	for i := range ids {
		twg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Millisecond)
			defer cancel()
			_ = b.Deliver(ctx, ids[i], []byte("late"))
		})
	}
	twg.Wait()
	testwait.For(t, "no waiters", func() bool { return b.devices.waiters() == 0 })
	testwait.For(t, "goroutines back after timeouts", func() bool { return runtime.NumGoroutine() <= goroutines })
}

// Deliver and Publish to one device keep the order of the calls.
func TestDeliverKeepsOrderWithPublish(t *testing.T) {
	auth := newAuthority()
	a := auth.device(1)
	b := startBroker(t, Config{Authority: auth})
	rc := deviceSubscribed(t, b, auth, a, 2)
	var mu sync.Mutex
	var got []string
	go rc.serveQoS2(func(pk packets.Packet) {
		mu.Lock()
		got = append(got, string(pk.Payload))
		mu.Unlock()
	})
	testwait.For(t, "online", func() bool { return b.Online(a) })
	var want []string
	for i := range 100 {
		p := strconv.Itoa(i)
		want = append(want, p)
		var err error
		if i%3 == 0 {
			err = b.Deliver(t.Context(), a, []byte(p))
		} else {
			err = b.Publish(ControlTopic(a), []byte(p))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	testwait.For(t, "all", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == len(want) })
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("order %q", got)
	}
}

// A burst of in-process publishes to an online device does not overflow
// mochi's small per-connection write queue (which would drop messages for
// good): publishes wait for the device to read. The cap on unacknowledged
// messages is set above the burst: past it mochi drops too (documented at
// Config.MaxQueuedPerClient), and a loaded machine lets the device's
// acknowledgements fall behind the publisher.
func TestPublishBurstWaitsForRoom(t *testing.T) {
	auth := newAuthority()
	a := auth.device(1)
	b := startBroker(t, Config{Authority: auth, MaxPendingWrites: 4, MaxQueuedPerClient: 4096})
	rc := deviceSubscribed(t, b, auth, a, 2)
	var mu sync.Mutex
	var got []string
	go rc.serveQoS2(func(pk packets.Packet) {
		mu.Lock()
		got = append(got, string(pk.Payload))
		mu.Unlock()
	})
	testwait.For(t, "online", func() bool { return b.Online(a) })
	const n = 2000
	for i := range n {
		if err := b.Publish(ControlTopic(a), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Deliver(t.Context(), a, []byte("last")); err != nil {
		t.Fatalf("deliver after the burst: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n+1 {
		t.Fatalf("device got %d messages, want %d", len(got), n+1)
	}
	for i := range n {
		if got[i] != strconv.Itoa(i) {
			t.Fatalf("message %d is %q", i, got[i])
		}
	}
}
