package server

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"sort"
	"testing"
	"time"

	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/internal/testbroker"
	"github.com/e4c2/e4c2/suites"
	"github.com/e4c2/e4c2/suites/core"
)

// syncView is the part of GET /api/v1/clients/{c} this test reads.
type syncView struct {
	Sync struct {
		Status  string `json:"status"`
		Pending int    `json:"pending"`
		Topics  []struct {
			Topic     string `json:"topic"`
			Desired   uint64 `json:"desired"`
			Confirmed uint64 `json:"confirmed"`
		} `json:"topics"`
	} `json:"sync"`
}

// C2 kill -9 in the middle of topic rotations (the real binary, embedded
// store and broker): every restart finds the commands the log still owes,
// the devices reconnect to the new broker with their credentials, and every
// device ends on the newest key, which the C2's confirmed view then states
// for exactly those devices.
func TestConvergenceC2Kill9(t *testing.T) {
	n := 200
	if testing.Short() {
		n = 40
	}
	bin := buildE4c2(t)
	dir := t.TempDir()
	httpAddr, mqttAddr := testbroker.FreeAddr(t), testbroker.FreeAddr(t)
	args := []string{"serve", "--data-dir", dir, "--http-listen", httpAddr, "--mqtt-listen", mqttAddr}
	p := startProc(t, bin, args...)
	token := p.adminToken(t)
	base := "http://" + httpAddr
	waitHealthy(t, base, p)
	api := func(method, path string, body any, want int) []byte {
		t.Helper()
		code, out := httpDo(t, method, base+path, token, body)
		if code != want {
			t.Fatalf("%s %s: %d %s", method, path, code, out)
		}
		return out
	}
	s, _ := suites.ByName("standard")
	const topic = "fleet-rotating"
	api(nethttp.MethodPost, "/api/v1/topics", map[string]string{"topic": topic}, nethttp.StatusCreated)
	fleet := make([]*fleetDev, n)
	names := make([]string, n)
	for i := range fleet {
		name := fmt.Sprintf("dev-%03d", i)
		key, _ := s.GenerateKey()
		api(nethttp.MethodPost, "/api/v1/clients", map[string]string{"name": name, "key": hex.EncodeToString(key), "role": "consumer"}, nethttp.StatusCreated)
		c, err := client.New(client.Config{Suite: s, Mode: core.SymKey, Name: name, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		fleet[i], names[i] = &fleetDev{name: name, c: c}, name
	}
	api(nethttp.MethodPost, "/api/v1/batch/attach", map[string]any{"topic": topic, "clients": names}, nethttp.StatusOK)
	connectFleet(t, "tcp://"+mqttAddr, fleet)
	if t.Failed() {
		return
	}
	converged := func(what string) {
		t.Helper()
		var exported struct {
			Key string `json:"key"`
		}
		if err := json.Unmarshal(api(nethttp.MethodPost, "/api/v1/export/topics/"+topic, nil, nethttp.StatusOK), &exported); err != nil {
			t.Fatal(err)
		}
		want, _ := hex.DecodeString(exported.Key)
		deadline := time.Now().Add(90 * time.Second)
		for {
			var behind, unconfirmed []string
			for _, f := range fleet {
				st := f.c.State()
				if tk, ok := st.Topics[hex.EncodeToString(s.HashTopic(topic))]; !ok || !bytes.Equal(tk.Key, want) {
					behind = append(behind, f.name)
				}
				var v syncView
				if err := json.Unmarshal(api(nethttp.MethodGet, "/api/v1/clients/"+f.name, nil, nethttp.StatusOK), &v); err != nil {
					t.Fatal(err)
				}
				ok := v.Sync.Pending == 0 && len(v.Sync.Topics) == 1 &&
					v.Sync.Topics[0].Desired != 0 && v.Sync.Topics[0].Confirmed == v.Sync.Topics[0].Desired
				if !ok {
					unconfirmed = append(unconfirmed, f.name)
				}
			}
			if len(behind) == 0 && len(unconfirmed) == 0 {
				return
			}
			if time.Now().After(deadline) {
				sort.Strings(behind)
				t.Fatalf("%s: %d devices lack the newest key (%v), the C2 has not confirmed %d (%v)",
					what, len(behind), head(behind), len(unconfirmed), head(unconfirmed))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	converged("first key")

	for r := 1; r <= 10; r++ {
		api(nethttp.MethodPost, "/api/v1/topics/"+topic+"/rotate", nil, nethttp.StatusOK)
		if r%3 == 0 { // mid fan-out
			if err := p.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			p.wait(t, 10*time.Second)
			testbroker.WaitPort(t, mqttAddr, false)
			p = startProc(t, bin, args...)
			waitHealthy(t, base, p)
		}
	}
	converged("after 10 rotations and 3 kill -9")
	for _, f := range fleet {
		f.mu.Lock()
		errs := f.errs
		f.mu.Unlock()
		if len(errs) != 0 {
			t.Fatalf("device %s rejected a command: %v", f.name, errs)
		}
	}
}

func head(s []string) string {
	if len(s) > 10 {
		return fmt.Sprint(s[:10], "...")
	}
	return fmt.Sprint(s)
}
