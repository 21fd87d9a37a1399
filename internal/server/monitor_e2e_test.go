package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/e4c2/e4c2/automation"
	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/eventcodec"
	"github.com/e4c2/e4c2/internal/server"
	"github.com/e4c2/e4c2/internal/testbroker"
	"github.com/e4c2/e4c2/monitor"
	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/transport/mqtt"
)

// rawDevice is a registered device whose MQTT connection is a plain paho
// client: it publishes whatever bytes the test gives it (a rogue or broken
// device), with its own credential.
type rawDevice struct {
	id domain.ID
	mq paho.Client
}

func newRawDevice(t *testing.T, srv *server.Server, url, name string, role domain.Role) *rawDevice {
	t.Helper()
	c := server.RegisterTestDevice(t, context.Background(), srv.Service(), c2.Origin{Actor: "test"}, name, role, nil)
	user, pass, err := c.MQTTCredential()
	if err != nil {
		t.Fatal(err)
	}
	mq, err := rawConnect(url, "e4dev-"+user, user, pass)
	if err != nil {
		t.Fatalf("raw device %s: %v", name, err)
	}
	t.Cleanup(func() { mq.Disconnect(100) })
	return &rawDevice{id: domain.ID(c.ID()), mq: mq}
}

func (r *rawDevice) publish(t *testing.T, topic string, payload []byte) {
	t.Helper()
	tok := r.mq.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("raw publish on %s: %v", topic, tok.Error())
	}
}

// findings returns the monitor.finding.v1 events of the log.
func findings(t *testing.T, svc *c2.Service) []*domain.MonitorFinding {
	t.Helper()
	var out []*domain.MonitorFinding
	for _, r := range logRecords(t, svc) {
		if r.Type != domain.TypeMonitorFinding.WireName() {
			continue
		}
		if r.Meta.Actor != c2.MonitorActor {
			t.Fatalf("finding by %q", r.Meta.Actor)
		}
		ev, err := eventcodec.DecodeRecord(&r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev.(*domain.MonitorFinding))
	}
	return out
}

// TestMonitorEndToEnd runs the monitor inside a real server with the
// embedded broker, for every suite and mode, with device-library clients:
// a device on a key two rotations old, a forged message, a plaintext
// publisher, a replayed message, (PK) a device signing for a topic it left,
// and a burst of traffic. Each gives exactly one finding event with the
// expected count, publisher and key version; the Prometheus series move;
// a rule reacting to forged messages rotates the topic once.
//
// With an external mosquitto the monitor reads the topics through a
// shared subscription ($share/e4c2-monitor/<topic>); the broker does not
// say who published, so only PK signers name a publisher there.
func TestMonitorEndToEnd(t *testing.T) {
	for _, brk := range []string{"embedded", "mosquitto"} {
		for _, cb := range combos() {
			t.Run(brk+"/"+cb.suite+"-"+cb.mode, func(t *testing.T) {
				url := ""
				if brk == "mosquitto" {
					url = testbroker.StartMosquitto(t, 0).URL()
				}
				srv := startWith(t, func(c *config.Config) {
					c.Suite, c.Mode = cb.suite, cb.mode
					c.Broker = url
					c.DeliverUnseen = url != "" // devices without acks (see startServer)
					c.Monitor.Enabled = true
					c.Monitor.Window = config.Duration{Duration: time.Hour} // closed by Flush below
					c.Monitor.RateBucket = config.Duration{Duration: 250 * time.Millisecond}
				}, nil)
				if url == "" {
					url = "tcp://" + srv.MQTTAddr()
				}
				runMonitorScenario(t, srv, url, brk == "embedded")
			})
		}
	}
}

// topicStats returns the monitor's statistics of topic.
func topicStats(srv *server.Server, topic string) monitor.TopicStats {
	for _, ts := range srv.Monitor().Stats().Topics {
		if ts.Topic == topic {
			return ts
		}
	}
	return monitor.TopicStats{}
}

func runMonitorScenario(t *testing.T, srv *server.Server, url string, knowsPublisher bool) {
	ctx := context.Background()
	svc := srv.Service()
	o := c2.Origin{Actor: "test"}
	pk := svc.Mode() == core.PubKey
	const topic = "plant/boiler/temp"
	mon := srv.Monitor()
	if mon == nil {
		t.Fatal("monitor not running")
	}
	defer func() {
		if t.Failed() {
			t.Logf("monitor stats: %+v", topicStats(srv, topic))
		}
	}()

	sensor := newDevice(t, srv, url, "sensor-1", domain.RoleBoth)
	laggard := newDevice(t, srv, url, "laggard-1", domain.RoleBoth)
	outsider := newDevice(t, srv, url, "outsider-1", domain.RoleBoth)
	rogue := newRawDevice(t, srv, url, "rogue-1", domain.RolePublisher)
	watched.Lock()
	watched.devs = []*device{sensor, laggard, outsider}
	watched.Unlock()
	t.Cleanup(func() {
		watched.Lock()
		watched.devs = nil
		watched.Unlock()
	})
	if _, err := svc.NewTopic(ctx, o, topic); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"sensor-1", "laggard-1", "outsider-1", "rogue-1"} {
		if _, err := svc.NewTopicClient(ctx, o, c2.ByName(n), topic); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the devices hold the topic key", func() bool {
		return topicKey(sensor.c, topic) != nil && topicKey(laggard.c, topic) != nil && topicKey(outsider.c, topic) != nil
	})
	first, _ := svc.Topic(topic)

	// The laggard and the outsider go offline and miss two rotations; the
	// outsider also leaves the topic.
	laggard.d.Close()
	outsider.d.Close()
	for range 2 {
		if _, err := svc.RotateTopic(ctx, o, topic); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.RemoveTopicClient(ctx, o, c2.ByName("outsider-1"), topic); err != nil {
		t.Fatal(err)
	}
	current, err := svc.ExportTopicKey(ctx, o, topic)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the sensor holds the current key", func() bool { return string(topicKey(sensor.c, topic)) == string(current) })
	rotated, _ := svc.Topic(topic)

	// A rule: forged messages on a topic rotate its key.
	var spec automation.Spec
	if err := json.Unmarshal([]byte(`{"id": "rotate-on-forgery",
		"trigger": {"event": "event.type == \"monitor.finding.v1\" && event.kind == \"forged\""},
		"action": {"type": "rotate_topic"}}`), &spec); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Rules().CreateRule(ctx, o, spec); err != nil {
		t.Fatal(err)
	}

	protect := func(c *client.Client, msg string) []byte {
		t.Helper()
		p, err := c.ProtectMessage([]byte(msg), topic)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The monitor sees the topic (a subscription on an external broker
	// takes effect asynchronously).
	probes := 0
	eventually(t, "the monitor sees the topic", func() bool {
		probes++ // distinct: the standard suite's SK messages are deterministic
		if err := sensor.d.Publish(ctx, topic, fmt.Appendf(nil, "probe %d", probes)); err != nil {
			t.Fatal(err)
		}
		return topicStats(srv, topic).Messages > 0
	})
	// Steady traffic, 4 messages per 250 ms bucket for 4 s: the baseline.
	tick := time.NewTicker(62 * time.Millisecond)
	for i := range 64 {
		<-tick.C
		if err := sensor.d.Publish(ctx, topic, fmt.Appendf(nil, "reading %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	tick.Stop()
	// The findings.
	rogue.publish(t, topic, protect(laggard.c, "still on key v1")) // old key
	forged := protect(sensor.c, "open the valve")
	forged[len(forged)/2] ^= 0x01
	rogue.publish(t, topic, forged)                                // forged
	rogue.publish(t, topic, []byte(`{"temp": 21.5, "unit": "C"}`)) // plaintext
	replayed := protect(sensor.c, "open the valve")
	rogue.publish(t, topic, replayed) // current
	rogue.publish(t, topic, replayed) // replay
	if pk {
		rogue.publish(t, topic, protect(outsider.c, "not mine")) // not a member
	}
	// A burst: 300 messages at once.
	for i := range 300 {
		if err := sensor.d.Publish(ctx, topic, fmt.Appendf(nil, "burst %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for the messages of each finding and the burst's bucket to be
	// classified, then close the finding windows.
	eventually(t, "the monitor classified the findings and the burst", func() bool {
		ts := topicStats(srv, topic)
		c := ts.Classes
		ok := c["old_key"] == 1 && c["forged"] == 1 && c["plaintext"] == 1 && c["replay"] == 1 && ts.Spikes > 0
		return ok && (!pk || c["not_member"] == 1)
	})
	if err := mon.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if st := mon.Stats(); st.Recorded == 0 {
		t.Fatal("the monitor recorded nothing")
	}
	// The findings were appended before Flush returned; the read models
	// follow the log asynchronously.
	var byKind map[string][]*domain.MonitorFinding
	eventually(t, "the findings are in the read models", func() bool {
		byKind = map[string][]*domain.MonitorFinding{}
		n := 0
		for _, f := range findings(t, svc) {
			byKind[f.Kind] = append(byKind[f.Kind], f)
			n++
		}
		return uint64(n) == mon.Stats().Recorded
	})
	id := func(name string) domain.ID { return domain.ID(svc.Suite().ID(name)) }
	type want struct {
		client     domain.ID
		count      uint64
		keyVersion uint64
	}
	wants := map[string]want{
		"old_key":   {client: rogue.id, count: 1, keyVersion: first.KeyVersion},
		"forged":    {client: rogue.id, count: 1},
		"plaintext": {client: rogue.id, count: 1},
		"replay":    {client: rogue.id, count: 1, keyVersion: rotated.KeyVersion},
	}
	if pk {
		// The rogue device republished messages others signed: the
		// broker names it; without the broker's word only the signer is
		// known.
		wants["not_member"] = want{client: rogue.id, count: 1, keyVersion: first.KeyVersion}
	}
	if !knowsPublisher {
		for kind, w := range wants {
			w.client = domain.ID{}
			if pk {
				w.client = map[string]domain.ID{"old_key": id("laggard-1"), "replay": id("sensor-1"), "not_member": id("outsider-1")}[kind]
			}
			wants[kind] = w
		}
	}
	for kind, w := range wants {
		fs := byKind[kind]
		if len(fs) != 1 {
			t.Errorf("%s: %d finding events, want 1: %+v", kind, len(fs), fs)
			continue
		}
		f := fs[0]
		if f.Client != w.client || f.Count != w.count || f.KeyVersion != w.keyVersion || f.Topic != domain.TopicHash(topic) {
			t.Errorf("%s: client %s count %d key v%d, want client %s count %d key v%d", kind,
				f.Client, f.Count, f.KeyVersion, w.client, w.count, w.keyVersion)
		}
	}
	if old := byKind["old_key"]; len(old) == 1 && !old[0].Client.IsZero() {
		// The finding links to the device-truth view of its publisher.
		if want := fmt.Sprintf("device truth: desired v%d", rotated.KeyVersion); !strings.Contains(old[0].Detail, want) {
			t.Errorf("old_key detail %q lacks %q", old[0].Detail, want)
		}
	}
	if len(byKind["rate_spike"]) != 1 {
		t.Errorf("rate_spike: %d finding events, want 1", len(byKind["rate_spike"]))
	}
	for kind := range byKind {
		if _, ok := wants[kind]; !ok && kind != "rate_spike" && kind != "rate_drop" {
			t.Errorf("unexpected finding %s: %+v", kind, byKind[kind])
		}
	}

	// The rule reacted once: one fire, one rotation by it.
	eventually(t, "the forgery rule completed", func() bool {
		return ruleEvents(t, logRecords(t, svc), "rotate-on-forgery")[automation.TypeRuleCompleted] >= 1
	})
	if n := ruleEvents(t, logRecords(t, svc), "rotate-on-forgery"); n[automation.TypeRuleFired] != 1 {
		t.Errorf("the rule fired %d times, want once", n[automation.TypeRuleFired])
	}
	if after, _ := svc.Topic(topic); after.KeyVersion <= rotated.KeyVersion {
		t.Errorf("topic key v%d after the rule, was v%d", after.KeyVersion, rotated.KeyVersion)
	}

	// The Prometheus series moved.
	metrics := scrape(t, srv)
	if !strings.Contains(metrics, `e4c2_monitor_rate_anomalies_total{kind="rate_spike",topic="`+topic+`"}`) ||
		strings.Contains(metrics, `e4c2_monitor_rate_anomalies_total{kind="rate_spike",topic="`+topic+`"} 0`) {
		t.Error("metrics lack the rate spike")
	}
	for _, line := range []string{
		`e4c2_monitor_messages_total{class="forged",topic="` + topic + `"} 1`,
		`e4c2_monitor_messages_total{class="plaintext",topic="` + topic + `"} 1`,
		`e4c2_monitor_messages_total{class="replay",topic="` + topic + `"} 1`,
		`e4c2_monitor_messages_total{class="old_key",topic="` + topic + `"} 1`,
		`e4c2_monitor_dropped_total 0`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
}

func scrape(t *testing.T, srv *server.Server) string {
	t.Helper()
	resp, err := http.Get("http://" + srv.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// topicMessages returns the messages m classified on topic.
func topicMessages(m *monitor.Monitor, topic string) uint64 {
	for _, ts := range m.Stats().Topics {
		if ts.Topic == topic {
			return ts.Messages
		}
	}
	return 0
}

// TestMonitorSharedSubscriptionSplits: two monitors in one shared
// subscription group on a real mosquitto (as two C2 instances would be)
// split a topic's traffic: each classifies a share, and together every
// message exactly once.
func TestMonitorSharedSubscriptionSplits(t *testing.T) {
	url := testbroker.StartMosquitto(t, 0).URL()
	srv := startWith(t, func(c *config.Config) {
		c.Broker = url
		c.DeliverUnseen = true // devices without acks (see startServer)
		c.Monitor.Enabled = true
	}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	svc := srv.Service()
	other, err := monitor.New(monitor.Config{Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	p, err := mqtt.NewPaho(mqtt.PahoConfig{BrokerURL: url})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { _ = other.Run(ctx); done <- struct{}{} }()
	go func() { server.SubscribeSharedForTest(ctx, p, other, svc.TopicNames); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
		_ = p.Close()
	})

	o := c2.Origin{Actor: "test"}
	// Subscriptions are made in name order: once a probe of "zz/probe"
	// reached a monitor, its subscription to "aa/measured" is active.
	const measured, probe = "aa/measured", "zz/probe"
	dev := newDevice(t, srv, url, "sensor-1", domain.RoleBoth)
	for _, topic := range []string{measured, probe} {
		if _, err := svc.NewTopic(ctx, o, topic); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.NewTopicClient(ctx, o, c2.ByName("sensor-1"), topic); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the device holds both keys", func() bool {
		return topicKey(dev.c, measured) != nil && topicKey(dev.c, probe) != nil
	})
	n := 0
	eventually(t, "both monitors receive the probes", func() bool {
		n++
		if err := dev.d.Publish(ctx, probe, fmt.Appendf(nil, "probe %d", n)); err != nil {
			t.Fatal(err)
		}
		return topicMessages(srv.Monitor(), probe) > 0 && topicMessages(other, probe) > 0
	})
	const total = 200
	for i := range total {
		if err := dev.d.Publish(ctx, measured, fmt.Appendf(nil, "reading %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the two monitors classified every message", func() bool {
		return topicMessages(srv.Monitor(), measured)+topicMessages(other, measured) >= total
	})
	a, b := topicMessages(srv.Monitor(), measured), topicMessages(other, measured)
	if a+b != total || a == 0 || b == 0 {
		t.Fatalf("split %d + %d of %d messages: want every message once, some to each", a, b, total)
	}
}
