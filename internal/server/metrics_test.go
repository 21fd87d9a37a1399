package server

import (
	"bytes"
	"context"
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/c2test"
	"github.com/e4c2/e4c2/suites/core"
)

// TestMetricsFleet checks e4c2_devices{status}, the released and waiting
// gauges and the confirmation counter against the service's sync state.
func TestMetricsFleet(t *testing.T) {
	ctx := context.Background()
	svc, _ := c2test.Service(t, core.SymKey)
	m := newMetrics()
	m.watchService(svc)
	o := c2.Origin{Actor: "test"}
	for _, n := range []string{"a", "b", "c", "d"} {
		if _, err := svc.NewClient(ctx, o, c2.ByName(n), bytes.Repeat([]byte{1}, 32), domain.RoleBoth); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.NewTopic(ctx, o, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AttachClients(ctx, o, "t", []c2.ClientRef{c2.ByName("a"), c2.ByName("b"), c2.ByName("c")}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Release(ctx, o, c2.ByName("d")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b"} {
		if err := svc.RecordSeen(ctx, o, domain.ClientID(n), false); err != nil {
			t.Fatal(err)
		}
	}
	q := svc.PendingFor(domain.ClientID("a"), 0)[0]
	if err := svc.RecordConfirmed(ctx, o, q); err != nil {
		t.Fatal(err)
	}
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range mt.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case mt.GetGauge() != nil:
				got[name] = mt.GetGauge().GetValue()
			case mt.GetCounter() != nil:
				got[name] = mt.GetCounter().GetValue()
			}
		}
	}
	for name, want := range map[string]float64{
		"e4c2_devices{status=in_sync}":    1, // a: seen, its command confirmed
		"e4c2_devices{status=lagging}":    1, // b: seen, a command pending
		"e4c2_devices{status=never_seen}": 2, // c, d
		"e4c2_devices_released":           1, // d
		"e4c2_commands_waiting_unseen":    1, // c's SetTopicKey
		"e4c2_commands_confirmed_total":   1,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
}

// e4c2_build_info says which build runs: value 1, labels from the binary.
func TestBuildInfoMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	registerBuildInfo(reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "e4c2_build_info" {
			continue
		}
		m := mf.GetMetric()[0]
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if m.GetGauge().GetValue() != 1 || labels["go"] != runtime.Version() || labels["version"] == "" {
			t.Fatalf("e4c2_build_info = %v %v", m.GetGauge().GetValue(), labels)
		}
		return
	}
	t.Fatal("no e4c2_build_info metric")
}
