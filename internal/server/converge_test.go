package server_test

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/client/e4mqtt"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/testbroker"
	"github.com/e4c2/e4c2/suites/core"
)

// convergenceFleet is how many device-library devices the kill -9 tests run;
// -short runs fewer.
func convergenceFleet() int {
	if testing.Short() {
		return 40
	}
	return 200
}

// farmDevice is one device of a fleet: its library client, its connection
// (replaced when the test reconnects it) and its errors.
type farmDevice struct {
	name string
	c    *client.Client
	mu   sync.Mutex
	d    *e4mqtt.Device
	errs []error
}

func (f *farmDevice) onMessage(m e4mqtt.Message) {
	if m.Err != nil {
		f.mu.Lock()
		f.errs = append(f.errs, m.Err)
		f.mu.Unlock()
	}
}

// notConverged returns, sorted, the devices that do not hold key for topic.
func notConverged(fleet []*farmDevice, topic string, key []byte) []string {
	var out []string
	for _, f := range fleet {
		if !bytes.Equal(topicKey(f.c, topic), key) {
			out = append(out, f.name)
		}
	}
	sort.Strings(out)
	return out
}

// unconfirmed returns, sorted, the devices whose topic key the C2 does not
// see confirmed at the current version.
func unconfirmed(t *testing.T, svc *c2.Service, fleet []*farmDevice, topic string) []string {
	t.Helper()
	var out []string
	for _, f := range fleet {
		ds, err := svc.DeviceSync(c2.ByName(f.name))
		if err != nil {
			t.Fatal(err)
		}
		ok := false
		for _, row := range ds.Topics {
			if row.Name == topic && row.Desired != 0 && row.Confirmed == row.Desired {
				ok = true
			}
		}
		if !ok || ds.Pending != 0 {
			out = append(out, f.name)
		}
	}
	sort.Strings(out)
	return out
}

// Broker kill -9 in the middle of topic rotations (external mosquitto with
// persistence, devices that acknowledge): after each crash the C2 and the
// devices reconnect, the C2 resends what no device confirmed, and every
// device ends on the newest key; the C2's confirmed view is then exactly
// what the devices hold.
func TestConvergenceBrokerKill9(t *testing.T) {
	ctx := context.Background()
	o := c2.Origin{Actor: "test"}
	mq := testbroker.StartMosquittoPersistent(t, 0)
	srv := startWith(t, func(c *config.Config) { c.Broker, c.DeviceAcks = mq.URL(), true }, nil)
	svc := srv.Service()
	const topic = "fleet/rotating"
	if _, err := svc.NewTopic(ctx, o, topic); err != nil {
		t.Fatal(err)
	}
	n := convergenceFleet()
	fleet := make([]*farmDevice, n)
	refs := make([]c2.ClientRef, n)
	for i := range fleet {
		name := fmt.Sprintf("dev-%03d", i)
		key, err := svc.Suite().GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.NewClient(ctx, o, c2.ByName(name), key, domain.RoleConsumer); err != nil {
			t.Fatal(err)
		}
		c, err := client.New(client.Config{Suite: svc.Suite(), Mode: core.SymKey, Name: name, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		fleet[i], refs[i] = &farmDevice{name: name, c: c}, c2.ByName(name)
	}
	if _, err := svc.AttachClients(ctx, o, topic, refs); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, f := range fleet {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := e4mqtt.Connect(ctx, f.c, e4mqtt.Config{BrokerURL: mq.URL(), Acks: true, OnMessage: f.onMessage})
			if err != nil {
				t.Error(err)
				return
			}
			f.mu.Lock()
			f.d = d
			f.mu.Unlock()
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, f := range fleet {
			if f.d != nil {
				f.d.Close()
			}
		}
	})
	if t.Failed() {
		return
	}
	current := func() []byte {
		k, err := svc.ExportTopicKey(ctx, o, topic)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	waitConverged(t, svc, fleet, topic, current())

	const rotations = 10
	for r := 1; r <= rotations; r++ {
		if _, err := svc.RotateTopic(ctx, o, topic); err != nil {
			t.Fatalf("rotation %d: %v", r, err)
		}
		if r%3 == 0 { // mid fan-out: some devices have the new key, some not
			mq.Kill()
			mq.Start()
		}
	}
	waitConverged(t, svc, fleet, topic, current())
}

// waitConverged waits until every device holds the current key and the C2
// confirms exactly that; on timeout it names the devices on each side.
func waitConverged(t *testing.T, svc *c2.Service, fleet []*farmDevice, topic string, key []byte) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		behind := notConverged(fleet, topic, key)
		unconf := unconfirmed(t, svc, fleet, topic)
		if len(behind) == 0 && len(unconf) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not converged: %d devices lack the newest key %v; the C2 has not confirmed %d: %v",
				len(behind), head(behind), len(unconf), head(unconf))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func head(s []string) string {
	if len(s) > 10 {
		return strings.Join(s[:10], ",") + ",..."
	}
	return strings.Join(s, ",")
}
