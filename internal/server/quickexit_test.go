package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/client/e4mqtt"
	"github.com/e4c2/e4c2/domain"
)

// A device that leaves right after it applied a command (e4c2 device
// subscribe --count 1) still completes the QoS 2 exchange first, so the C2
// records the command confirmed.
func TestDeviceLeavingRightAfterACommand(t *testing.T) {
	ctx := context.Background()
	o := c2.Origin{Actor: "test"}
	srv := startServer(t, "standard", "sk", "")
	svc := srv.Service()
	f := registerOnly(t, srv, "quick", domain.RoleBoth, nil)
	got := make(chan e4mqtt.Message, 4)
	d, err := e4mqtt.Connect(ctx, f.c, e4mqtt.Config{BrokerURL: "tcp://" + srv.MQTTAddr(), OnMessage: func(m e4mqtt.Message) { got <- m }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.NewTopic(ctx, o, "quick/t"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.NewTopicClient(ctx, o, c2.ByName(f.name), "quick/t"); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if !m.Command || m.Err != nil {
			t.Fatalf("%+v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no command")
	}
	d.Close()
	eventually(t, "the command recorded confirmed", func() bool { return svc.PendingCount() == 0 })
}
