package broker

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/e4c2/e4c2/internal/testwait"
)

func TestOrderedStamps(t *testing.T) {
	mk := func(created ...int64) []packets.Packet {
		var p []packets.Packet
		for i, c := range created {
			p = append(p, packets.Packet{Created: c, PacketID: uint16(i + 1)})
		}
		return p
	}
	for name, pks := range map[string][]packets.Packet{
		"same second":     mk(1000, 1000, 1000, 1000),
		"crossing 65536":  mk(65534, 65534, 65535, 65535, 65536),
		"mixed":           mk(5, 5, 9, 9, 9, 12),
		"very wide":       mk(10, 70000, 200000),
		"real time":       mk(1764100000, 1764100000, 1764100001),
		"just below wrap": mk(131070, 131070),
	} {
		st := orderedStamps(pks)
		for i := 1; i < len(st); i++ {
			if st[i] <= st[i-1] || uint16(st[i]) <= uint16(st[i-1]) {
				t.Errorf("%s: stamps %v not increasing (as uint16 too)", name, st)
				break
			}
		}
	}
}

// A client with a persistent session that was offline while messages were
// queued for it gets them in queue order when it reconnects, including
// after a broker restart with persistence.
func TestOfflineQueueOrder(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprint("restart=", restart), func(t *testing.T) {
			addr := freeAddr(t)
			auth := newAuthority()
			id := auth.device(1)
			topic := ControlTopic(id)
			cfg := Config{Address: addr, Authority: auth}
			if restart {
				cfg.PersistPath = filepath.Join(t.TempDir(), "broker.db")
			}
			b := startBroker(t, cfg)
			opts := func() *paho.ClientOptions {
				return paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(clientID(id)).
					SetUsername(user(id)).SetPassword(auth.password(id)).SetCleanSession(false).SetAutoReconnect(false).SetConnectTimeout(2 * time.Second)
			}
			c := paho.NewClient(opts())
			if tok := c.Connect(); !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
				t.Fatalf("connect: %v", tok.Error())
			}
			if tok := c.Subscribe(topic, 2, nil); !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
				t.Fatalf("subscribe: %v", tok.Error())
			}
			c.Disconnect(50)
			testwait.For(t, "disconnect", func() bool { return b.ListenerStats().Active == 0 })

			const n = 300
			for i := range n {
				if err := b.Publish(topic, []byte(strconv.Itoa(i))); err != nil {
					t.Fatal(err)
				}
			}
			if restart {
				if err := b.Close(); err != nil {
					t.Fatal(err)
				}
				if err := b.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			r := &received{ch: make(chan struct{}, 1)}
			o := opts().SetDefaultPublishHandler(r.handler)
			c = paho.NewClient(o)
			if tok := c.Connect(); !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
				t.Fatalf("reconnect: %v", tok.Error())
			}
			defer c.Disconnect(0)
			testwait.For(t, "queued messages", func() bool { return len(r.snapshot()) >= n })
			for i, m := range r.snapshot()[:n] {
				if want := topic + "=" + strconv.Itoa(i); m != want {
					t.Fatalf("message %d is %q, want %q (offline queue reordered)", i, m, want)
				}
			}
		})
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	b := startBroker(t, Config{})
	addr := b.Addr()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
