package broker

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/e4c2/e4c2/internal/testwait"
)

// Publishing in process while a persistent subscriber takes its session
// over (here: reconnecting after a broker restart) loses nothing and keeps
// queue order.
func TestTakeoverDuringPublishes(t *testing.T) {
	addr := freeAddr(t)
	auth := newAuthority()
	id := auth.device(1)
	topic := ControlTopic(id)
	b := startBroker(t, Config{Address: addr, Authority: auth, PersistPath: filepath.Join(t.TempDir(), "b.db")})
	r := &received{ch: make(chan struct{}, 1)}
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(clientID(id)).
		SetUsername(user(id)).SetPassword(auth.password(id)).
		SetCleanSession(false).SetAutoReconnect(true).SetMaxReconnectInterval(50 * time.Millisecond).
		SetDefaultPublishHandler(r.handler)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(0)
	if tok := c.Subscribe(topic, 2, nil); !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	const n1, n2 = 10, 300
	for i := range n1 {
		if err := b.Publish(topic, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	testwait.For(t, "first batch", func() bool { return len(r.snapshot()) == n1 })
	testwait.For(t, "acks", func() bool { return b.Inflight() == 0 })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Publish while the subscriber comes back and takes its session over.
	for i := n1; i < n1+n2; i++ {
		if err := b.Publish(topic, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	testwait.For(t, "all", func() bool { return len(r.snapshot()) >= n1+n2 })
	for i, m := range r.snapshot() {
		if want := topic + "=" + strconv.Itoa(i); m != want {
			t.Fatalf("message %d is %q, want %q", i, m, want)
		}
	}
}
