package mqtt

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/e4c2/e4c2/internal/testwait"
)

// enqueueGroup queues one command per client of a group, phase by phase, with
// consecutive Seqs (as a topic rotation does).
func (s *fakeSource) enqueueGroup(group uint64, clients []int, phases []uint8) []Item {
	var out []Item
	s.mu.Lock()
	for i, c := range clients {
		s.seq++
		it := Item{ClientID: clientID(c), Seq: s.seq, Ref: fmt.Sprintf("g%d-p%d", group, phases[i]), Group: group, Phase: phases[i]}
		s.items = append(s.items, it)
		s.payload[it.Seq] = fmt.Sprintf("%x:%d:%s", it.ClientID, it.Seq, it.Ref)
		out = append(out, it)
	}
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return out
}

// A rotation reaches every consumer before any publisher: publishes of a
// later phase wait until every earlier phase of the group is settled, even
// when the earlier ones are slow and the window has room.
func TestWorkerPhasesOrderAcrossClients(t *testing.T) {
	src := newFakeSource()
	pub := newFakePublisher(16)
	pub.fail = func(payload string) error {
		if strings.HasSuffix(payload, "-p0") {
			time.Sleep(20 * time.Millisecond) // slow consumers
		}
		return nil
	}
	// Two rotations (groups 1 and 2) over 9 clients: 3 consumers, 3 both, 3 publishers.
	clients := []int{1, 2, 3, 4, 5, 6, 7, 8, 9}
	ph := []uint8{0, 0, 0, 1, 1, 1, 2, 2, 2}
	src.enqueueGroup(1, clients, ph)
	src.enqueueGroup(2, clients, ph)
	// Ungrouped items are not held back.
	free := src.enqueue(20)
	w := NewWorker(src, pub, fastConfig())
	runWorker(t, w)
	testwait.For(t, "all delivered", func() bool { return src.count("delivered") == 19 })
	got, viol, _ := pub.snapshot()
	if len(viol) > 0 {
		t.Fatalf("violations: %v", viol)
	}
	for g := 1; g <= 2; g++ {
		last := -1
		for _, p := range got {
			i := strings.Index(p, fmt.Sprintf("g%d-p", g))
			if i < 0 {
				continue
			}
			phase := int(p[i+len(fmt.Sprintf("g%d-p", g))] - '0')
			if phase < last {
				t.Fatalf("group %d: phase %d confirmed after phase %d: %v", g, phase, last, got)
			}
			last = phase
		}
	}
	if !strings.HasSuffix(got[0], free.Ref) && !strings.Contains(strings.Join(got[:4], " "), free.Ref) {
		t.Fatalf("an ungrouped item waited behind a slow group: %v", got)
	}
}
