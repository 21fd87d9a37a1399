package testwait

import (
	"testing"
	"time"
)

// Timeout bounds every wait: long enough that a loaded machine under -race
// never trips it, short enough that a broken test fails well before go
// test's own timeout, with the name of what it waited for.
const Timeout = 30 * time.Second

// For polls cond until it returns true, failing t after Timeout with a
// message naming what. cond runs on the test's goroutine, so it may itself
// call t.Fatal (for example to fail at once on a device's error).
func For(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !poll(Timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", Timeout, what)
	}
}

// Ready waits until ch is closed or yields a value, failing t after
// Timeout with a message naming what: for effects the code under test
// signals on a channel, which is better than polling when available.
func Ready[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out after %v waiting for %s", Timeout, what)
	}
	var zero T
	return zero
}

// poll reports whether cond held within d. The interval starts short, so a
// quick effect is seen quickly, and grows to 10 ms, so a slow one does not
// steal CPU from the code it waits for.
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	interval := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
		if interval < 10*time.Millisecond {
			interval *= 2
		}
	}
	return true
}
