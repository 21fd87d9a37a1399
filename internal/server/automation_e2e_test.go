package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/e4c2/e4c2/automation"
	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/server"
)

// startServerWithToken is startServer that also returns the admin token the
// server prints once at its first start.
func startServerWithToken(t *testing.T) (*server.Server, string) {
	t.Helper()
	cfg := testConfig(t)
	cfg.Suite, cfg.Mode = "standard", "sk"
	var out bytes.Buffer
	srv := start(t, cfg, server.Options{Out: &out})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	token := strings.TrimSpace(lines[len(lines)-1])
	if token == "" || strings.Contains(token, " ") {
		t.Fatalf("no admin token in %q", out.String())
	}
	return srv, token
}

// apiCall sends one JSON request to the server's API and decodes the answer.
func apiCall(t *testing.T, srv *server.Server, token, method, path, body string, want int, out any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+srv.HTTPAddr()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// logRecords returns every event of the log up to the service's position.
func logRecords(t *testing.T, svc *c2.Service) []eventstore.Record {
	t.Helper()
	last := svc.Position()
	var recs []eventstore.Record
	errEnough := errors.New("enough")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := svc.Subscribe(ctx, 1, func(r eventstore.Record) error {
		recs = append(recs, r)
		if r.Position >= last {
			return errEnough
		}
		return nil
	})
	if !errors.Is(err, errEnough) {
		t.Fatalf("reading the log: %v", err)
	}
	return recs
}

// ruleEvents counts the events of a rule's stream by type, checking each
// fire and completion is attributed to the rule.
func ruleEvents(t *testing.T, recs []eventstore.Record, id string) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, r := range recs {
		if r.Stream != automation.Stream(id) {
			continue
		}
		n[r.Type]++
		if (r.Type == automation.TypeRuleFired || r.Type == automation.TypeRuleCompleted) && r.Meta.Actor != "rule:"+id {
			t.Fatalf("%s of %s has actor %q", r.Type, id, r.Meta.Actor)
		}
	}
	return n
}

// TestAutomationEndToEnd runs the automation engine inside a real server:
// rules created through the HTTP API react to a link and to a schedule, and
// the rotated keys reach a device-library client through the embedded
// broker.
func TestAutomationEndToEnd(t *testing.T) {
	srv, token := startServerWithToken(t)
	url := "tcp://" + srv.MQTTAddr()
	svc := srv.Service()
	ctx := context.Background()
	o := c2.Origin{Actor: "test"}

	dev := newDevice(t, srv, url, "sensor-1", domain.RoleBoth)
	watched.Lock()
	watched.devs = append(watched.devs, dev)
	watched.Unlock()
	t.Cleanup(func() {
		watched.Lock()
		watched.devs = nil
		watched.Unlock()
	})
	for _, topic := range []string{"sensors/temp", "fleet/status"} {
		if _, err := svc.NewTopic(ctx, o, topic); err != nil {
			t.Fatal(err)
		}
	}

	// On a link to a sensors/ topic, rotate that topic.
	apiCall(t, srv, token, http.MethodPost, "/api/v1/rules", `{
		"id": "rotate-on-join",
		"trigger": {"event": "event.type == \"topic.client_linked.v1\" && hasPrefix(event.topic, \"sensors/\")"},
		"action": {"type": "rotate_topic"}
	}`, http.StatusCreated, nil)
	// Every second, rotate fleet/ topics; nothing on creation.
	var sched automation.Rule
	apiCall(t, srv, token, http.MethodPost, "/api/v1/rules", `{
		"id": "rotate-fleet",
		"trigger": {"every": "1s", "fire_on_create": false},
		"targets": "topics | filter(hasPrefix(.name, \"fleet/\"))",
		"action": {"type": "rotate_topic"}
	}`, http.StatusCreated, &sched)
	if sched.Fires != 0 {
		t.Fatalf("scheduled rule fired on creation: %+v", sched)
	}

	// The link triggers the first rule.
	if _, err := svc.NewTopicClient(ctx, o, c2.ByName(dev.name), "sensors/temp"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.NewTopicClient(ctx, o, c2.ByName(dev.name), "fleet/status"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the link rule completed", func() bool {
		return ruleEvents(t, logRecords(t, svc), "rotate-on-join")[automation.TypeRuleCompleted] >= 1
	})
	ti, err := svc.Topic("sensors/temp")
	if err != nil {
		t.Fatal(err)
	}
	if ti.KeyVersion < 2 {
		t.Fatalf("sensors/temp key version %d after the rule", ti.KeyVersion)
	}
	want, err := svc.ExportTopicKey(ctx, c2.Origin{Actor: "test"}, "sensors/temp")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the device holds the rotated sensors/temp key", func() bool {
		return bytes.Equal(topicKey(dev.c, "sensors/temp"), want)
	})

	// The schedule fires within a few seconds and the device follows.
	eventually(t, "the scheduled rule completed", func() bool {
		return ruleEvents(t, logRecords(t, svc), "rotate-fleet")[automation.TypeRuleCompleted] >= 1
	})
	// Pause it so the key stops moving, then compare.
	apiCall(t, srv, token, http.MethodPost, "/api/v1/rules/rotate-fleet/pause", `{"reason":"test"}`, http.StatusOK, nil)
	if err := srv.Rules().WaitPosition(ctx, svc.Position()); err != nil {
		t.Fatal(err)
	}
	// A fire in progress when the pause landed completes; wait until every
	// fire has its completion.
	eventually(t, "every scheduled fire completed", func() bool {
		n := ruleEvents(t, logRecords(t, svc), "rotate-fleet")
		return n[automation.TypeRuleFired] == n[automation.TypeRuleCompleted]
	})
	fleet, err := svc.ExportTopicKey(ctx, c2.Origin{Actor: "test"}, "fleet/status")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the device holds the rotated fleet/status key", func() bool {
		return bytes.Equal(topicKey(dev.c, "fleet/status"), fleet)
	})

	// The key changes are the rule's: actor rule:<id>, caused by the link.
	recs := logRecords(t, svc)
	var byRule int
	for _, r := range recs {
		if r.Type == "topic.key_rotated.v1" && r.Meta.Actor == "rule:rotate-on-join" {
			byRule++
		}
	}
	if byRule != 1 {
		t.Fatalf("%d rotations by rule:rotate-on-join, want 1", byRule)
	}
	n := ruleEvents(t, recs, "rotate-on-join")
	if n[automation.TypeRuleFired] != 1 || n[automation.TypeRuleCompleted] != 1 {
		t.Fatalf("rotate-on-join events %v", n)
	}
	var got automation.Rule
	apiCall(t, srv, token, http.MethodGet, "/api/v1/rules/rotate-on-join", "", http.StatusOK, &got)
	if got.Fires != 1 || got.LastOutcome != automation.OutcomeSucceeded {
		t.Fatalf("rule after its fire %+v", got)
	}
}

// TestAutomationRestart: the server keeps the engine's checkpoint in the
// data directory, so after a restart rules continue where they stopped:
// the fire before the restart is not repeated and a later event fires.
func TestAutomationRestart(t *testing.T) {
	cfg := testConfig(t)
	dir := cfg.DataDir
	cfg.Suite, cfg.Mode = "standard", "sk"
	ctx := context.Background()
	o := c2.Origin{Actor: "test"}
	link := func(srv *server.Server, client string) {
		svc := srv.Service()
		if _, err := svc.NewClient(ctx, o, c2.ByName(client), bytes.Repeat([]byte{byte(len(client))}, 32), domain.RoleBoth); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.NewTopicClient(ctx, o, c2.ByName(client), "sensors/temp"); err != nil {
			t.Fatal(err)
		}
		if err := srv.Rules().WaitPosition(ctx, svc.Position()); err != nil {
			t.Fatal(err)
		}
	}

	srv := start(t, cfg, server.Options{})
	if _, err := srv.Service().NewTopic(ctx, o, "sensors/temp"); err != nil {
		t.Fatal(err)
	}
	spec := automation.Spec{
		ID:      "rotate-on-join",
		Trigger: automation.Trigger{Event: `event.type == "topic.client_linked.v1" && hasPrefix(event.topic, "sensors/")`},
		Action:  automation.Action{Type: automation.ActionRotateTopic},
	}
	if _, err := srv.Rules().CreateRule(ctx, o, spec); err != nil {
		t.Fatal(err)
	}
	link(srv, "dev-1")
	processed := srv.Rules().Position()
	stop(t, srv)
	// The engine saved where it stopped in the data directory.
	b, err := os.ReadFile(filepath.Join(dir, "automation.checkpoint"))
	if err != nil {
		t.Fatalf("engine checkpoint: %v", err)
	}
	if cp, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err != nil || cp < processed || cp == 0 {
		t.Fatalf("engine checkpoint %q, processed %d", b, processed)
	}

	srv = start(t, cfg, server.Options{})
	if err := srv.Rules().WaitPosition(ctx, srv.Service().Position()); err != nil {
		t.Fatal(err)
	}
	link(srv, "dev-22")
	eventuallyFires := func() map[string]int { return ruleEvents(t, logRecords(t, srv.Service()), "rotate-on-join") }
	eventually(t, "the second fire completed", func() bool { return eventuallyFires()[automation.TypeRuleCompleted] >= 2 })
	if n := eventuallyFires(); n[automation.TypeRuleFired] != 2 || n[automation.TypeRuleCompleted] != 2 {
		t.Fatalf("rule events across a restart %v, want 2 fires", n)
	}
	rotations := 0
	for _, r := range logRecords(t, srv.Service()) {
		if r.Type == "topic.key_rotated.v1" && r.Meta.Actor == "rule:rotate-on-join" {
			rotations++
		}
	}
	if rotations != 2 {
		t.Fatalf("%d rotations by the rule across a restart, want 2", rotations)
	}
}
