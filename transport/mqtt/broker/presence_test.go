package broker

import (
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/e4c2/e4c2/internal/testwait"
)

// events records Observer calls.
type events struct {
	mu sync.Mutex
	ev []string
}

func (e *events) DeviceOnline(id [16]byte, present bool) {
	e.add(fmt.Sprintf("online %x present=%v", id[:2], present))
}

func (e *events) DeviceOffline(id [16]byte) { e.add(fmt.Sprintf("offline %x", id[:2])) }

func (e *events) add(s string) {
	e.mu.Lock()
	e.ev = append(e.ev, s)
	e.mu.Unlock()
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.ev...)
}

func (e *events) waitLen(t *testing.T, n int) []string {
	t.Helper()
	testwait.For(t, fmt.Sprintf("%d observer events", n), func() bool { return len(e.list()) >= n })
	return e.list()
}

func TestPresence(t *testing.T) {
	auth := newAuthority()
	a := auth.device(1)
	ev := &events{}
	b := startBroker(t, Config{Authority: auth, Observer: ev})
	on := fmt.Sprintf("online %x present=false", a[:2])
	off := fmt.Sprintf("offline %x", a[:2])

	c, err := connect(t, b.Addr(), clientID(a), user(a), auth.password(a))
	if err != nil {
		t.Fatal(err)
	}
	if b.Online(a) || len(ev.list()) != 0 {
		t.Fatal("online before subscribing to its control topic")
	}
	// Another topic does not count.
	auth.subscribe["x/y"] = true
	subscribe(t, c, "x/y")
	if b.Online(a) {
		t.Fatal("online after subscribing elsewhere")
	}
	subscribe(t, c, ControlTopic(a))
	if got := ev.waitLen(t, 1); got[0] != on || !b.Online(a) {
		t.Fatalf("events %q, Online %v", got, b.Online(a))
	}
	// Subscribing again is no new event.
	subscribe(t, c, ControlTopic(a))
	if tok := c.Unsubscribe(ControlTopic(a)); !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if got := ev.waitLen(t, 2); got[1] != off || b.Online(a) {
		t.Fatalf("after unsubscribe: events %q, Online %v", got, b.Online(a))
	}
	subscribe(t, c, ControlTopic(a))
	ev.waitLen(t, 3)
	c.Disconnect(0)
	if got := ev.waitLen(t, 4); got[3] != off || len(got) != 4 {
		t.Fatalf("after disconnect: events %q", got)
	}
	testwait.For(t, "not online", func() bool { return !b.Online(a) })
	testwait.For(t, "device table empty", func() bool { return b.devices.size() == 0 })

	// A device that drops its connection without DISCONNECT goes offline too.
	rc := deviceSubscribed(t, b, auth, a, 2)
	ev.waitLen(t, 5)
	rc.conn.Close()
	if got := ev.waitLen(t, 6); got[5] != off {
		t.Fatalf("after a dropped connection: events %q", got)
	}
}

// A device whose persistent session holds its subscription is online as
// soon as it reconnects, with session present, without subscribing again;
// also after a broker restart with persistence.
func TestPresencePersistentSession(t *testing.T) {
	auth := newAuthority()
	a := auth.device(1)
	ev := &events{}
	addr := freeAddr(t)
	b := startBroker(t, Config{Address: addr, Authority: auth, Observer: ev, PersistPath: t.TempDir() + "/b.db"})
	rc := mustDial(t, addr, rawConnect{version: 4, clientID: clientID(a), user: user(a), pass: auth.password(a)})
	rc.subscribe(t, 2, ControlTopic(a))
	ev.waitLen(t, 1)
	rc.conn.Close()
	ev.waitLen(t, 2)
	mustDial(t, addr, rawConnect{version: 4, clientID: clientID(a), user: user(a), pass: auth.password(a)})
	want := fmt.Sprintf("online %x present=true", a[:2])
	if got := ev.waitLen(t, 3); got[2] != want {
		t.Fatalf("events %q, want %q last", got, want)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ev.waitLen(t, 4); got[3] != fmt.Sprintf("offline %x", a[:2]) {
		t.Fatalf("after close: %q", got)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustDial(t, addr, rawConnect{version: 4, clientID: clientID(a), user: user(a), pass: auth.password(a)})
	if got := ev.waitLen(t, 5); got[4] != want {
		t.Fatalf("after restart: events %q", got)
	}
}

// A device that reconnects while its old connection is still open takes
// it over: whatever the interleaving, the last event is online, and
// Online stays true.
func TestPresenceTakeover(t *testing.T) {
	auth := newAuthority()
	a := auth.device(1)
	ev := &events{}
	b := startBroker(t, Config{Authority: auth, Observer: ev})
	for i := range 20 {
		clean := i >= 10 // first persistent sessions (inherited subscription), then clean ones
		rc := mustDial(t, b.Addr(), rawConnect{version: 4, clientID: clientID(a), user: user(a), pass: auth.password(a), clean: clean})
		if clean || i == 0 {
			rc.subscribe(t, 2, ControlTopic(a))
		}
		testwait.For(t, "online", func() bool { return b.Online(a) })
	}
	// Once every replaced connection has ended, no offline may follow the
	// last online.
	testwait.For(t, "old connections closed", func() bool { return b.ListenerStats().Active == 1 })
	got := ev.list()
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] && got[i][:7] == "offline" {
			t.Fatalf("two offline in a row: %q", got)
		}
	}
	if got[len(got)-1][:6] != "online" || !b.Online(a) {
		t.Fatalf("events end with %q, Online %v (all: %q)", got[len(got)-1], b.Online(a), got)
	}
	if !contains(got, fmt.Sprintf("online %x present=true", a[:2])) {
		t.Fatalf("no online with session present in %q", got)
	}
}

// The Observer may call back into the broker.
func TestObserverMayCallOnline(t *testing.T) {
	auth := newAuthority()
	a := auth.device(1)
	seen := make(chan bool, 2)
	obs := &callbackObserver{}
	b := startBroker(t, Config{Authority: auth, Observer: obs})
	obs.online = func(id [16]byte) { seen <- b.Online(id) }
	obs.offline = func(id [16]byte) { seen <- b.Online(id) }
	o := paho.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID(clientID(a)).
		SetUsername(user(a)).SetPassword(auth.password(a)).SetAutoReconnect(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	subscribe(t, c, ControlTopic(a))
	if !<-seen {
		t.Fatal("Online false inside DeviceOnline")
	}
	c.Disconnect(0)
	if <-seen {
		t.Fatal("Online true inside DeviceOffline")
	}
}

type callbackObserver struct {
	online, offline func([16]byte)
}

func (o *callbackObserver) DeviceOnline(id [16]byte, _ bool) { o.online(id) }
func (o *callbackObserver) DeviceOffline(id [16]byte)        { o.offline(id) }
