package testwait

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestPollSeesTheCondition(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			n.Add(1)
		}
	}()
	For(t, "three increments", func() bool { return n.Load() == 3 })
}

// TestPollGivesUp checks the bound on a condition that never holds, with a
// short bound so that the test is quick: For itself only differs by its
// constant.
func TestPollGivesUp(t *testing.T) {
	start := time.Now()
	if poll(20*time.Millisecond, func() bool { return false }) {
		t.Fatal("poll reported a condition that never held")
	}
	if el := time.Since(start); el < 20*time.Millisecond {
		t.Fatalf("poll gave up after %v, before its bound", el)
	}
}

func TestReady(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 7
	if got := Ready(t, "a value", ch); got != 7 {
		t.Fatalf("Ready returned %d, want 7", got)
	}
}
