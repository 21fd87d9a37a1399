package broker

import (
	"bytes"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// orderHook keeps the messages a broker queued for an offline client in
// order when the client comes back.
//
// mochi v2.7.9 resends a resumed session's unacknowledged messages sorted by
// uint16(Created), where Created is a Unix time in seconds and the sort is
// not stable over a map: every message queued within one second goes out in
// random order (and the order flips every 65536 s). For E4 that breaks the
// per-client FIFO the C2 works for (two rotations of a topic key, a SetIdKey
// and what follows it). Just before mochi moves the old session's messages
// to the new connection, this hook re-stamps Created so that the same sort
// gives queue order: by original Created, then packet id (ids are allocated
// increasing, so this is queue order unless one client's ids wrap within a
// single second), each stamp at least one more than the previous one and
// shifted as a whole so that no stamp crosses a multiple of 65536. The
// stamps move by at most a few seconds per queued message, which only
// nudges mochi's forced expiry (a day by default).
//
// mochi also races a session take-over against publishes to that client:
// a message published between the copy of the old session's queue and the
// registration of the new connection stays in the old session and is lost,
// and one published just after can overtake the resent queue. So a
// take-over holds a gate, from before mochi copies the queue until it has
// resent it, that in-process publishes (Broker.Publish, the C2's path)
// wait for. A take-over that mochi abandons half-way never reaches
// OnSessionEstablished, so the gate also opens by itself after
// takeoverGateTimeout. Publishes from TCP clients (a C2 connected over TCP
// to the embedded broker) do not go through the gate: use the in-process
// publisher with the embedded broker.
//
// What it does not fix: mochi's deferral of messages past an MQTT 5
// client's receive maximum uses the same sort while the client is online.
// E4 devices speak MQTT 3.1.1, where that path is not taken.
type orderHook struct {
	mqtt.HookBase
	srv atomic.Pointer[mqtt.Server]

	gate    sync.RWMutex // write-held during a session take-over
	mu      sync.Mutex
	holders map[*mqtt.Client]*gateHold
}

// takeoverGateTimeout bounds how long one take-over can hold the gate.
const takeoverGateTimeout = 5 * time.Second

type gateHold struct {
	once  sync.Once
	timer *time.Timer
}

// publishGate is held (read side) by an in-process publish.
func (h *orderHook) publishGate() func() {
	h.gate.RLock()
	return h.gate.RUnlock
}

func (h *orderHook) openGate(cl *mqtt.Client) {
	h.mu.Lock()
	g := h.holders[cl]
	delete(h.holders, cl)
	h.mu.Unlock()
	if g != nil {
		g.once.Do(func() {
			g.timer.Stop()
			h.gate.Unlock()
		})
	}
}

func (h *orderHook) ID() string { return "e4-order" }

func (h *orderHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnSessionEstablish, mqtt.OnSessionEstablished}, []byte{b})
}

// OnSessionEstablish runs before mochi takes the old session over.
func (h *orderHook) OnSessionEstablish(cl *mqtt.Client, pk packets.Packet) {
	srv := h.srv.Load()
	if srv == nil || pk.Connect.Clean {
		return
	}
	existing, ok := srv.Clients.Get(cl.ID)
	if !ok {
		return
	}
	h.gate.Lock()
	g := &gateHold{}
	g.timer = time.AfterFunc(takeoverGateTimeout, func() { h.openGate(cl) })
	h.mu.Lock()
	if h.holders == nil {
		h.holders = make(map[*mqtt.Client]*gateHold)
	}
	h.holders[cl] = g
	h.mu.Unlock()
	if existing.State.Inflight != nil && existing.State.Inflight.Len() > 0 {
		restamp(existing.State.Inflight)
	}
}

// OnSessionEstablished runs once mochi has resent the old session's queue.
func (h *orderHook) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	h.openGate(cl)
}

// restamp rewrites the Created stamps of inf so that mochi's resend sort
// (by uint16(Created)) yields queue order.
func restamp(inf *mqtt.Inflight) {
	pks := inf.GetAll(false)
	sort.SliceStable(pks, func(i, j int) bool {
		if pks[i].Created != pks[j].Created {
			return pks[i].Created < pks[j].Created
		}
		return pks[i].PacketID < pks[j].PacketID
	})
	stamps := orderedStamps(pks)
	for i := range pks {
		pks[i].Created = stamps[i]
		inf.Set(pks[i])
	}
}

// orderedStamps returns strictly increasing stamps, each >= the packet's own
// Created (before the final shift), whose uint16 values are increasing too.
func orderedStamps(pks []packets.Packet) []int64 {
	out := make([]int64, len(pks))
	for i, pk := range pks {
		out[i] = pk.Created
		if i > 0 && out[i] <= out[i-1] {
			out[i] = out[i-1] + 1
		}
	}
	if len(out) == 0 {
		return out
	}
	first, last := out[0], out[len(out)-1]
	if span := last - first; span >= 1<<16 {
		// Too wide to keep near real time: fall back to a plain sequence
		// aligned on a multiple of 65536.
		base := first - int64(uint16(first))
		for i := range out {
			out[i] = base + int64(i)
		}
		return out
	}
	if int64(uint16(first))+(last-first) >= 1<<16 {
		// The stamps cross a multiple of 65536: move them all back so the
		// first sits on one.
		shift := int64(uint16(first))
		for i := range out {
			out[i] -= shift
		}
	}
	return out
}
