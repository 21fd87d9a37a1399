package server

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	nethttp "net/http"
	"os"
	"testing"
	"time"

	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/client/e4mqtt"
	"github.com/e4c2/e4c2/internal/testbroker"
	"github.com/e4c2/e4c2/suites"
	"github.com/e4c2/e4c2/suites/core"
)

// The whole binary runs in FIPS 140-only mode with the fips suite: it
// starts (no dependency uses a non-approved algorithm at start), serves the
// API and the embedded broker, and a device receives its key and a rotation.
func TestFIPSOnlyBinaryRoundTrip(t *testing.T) {
	bin := buildE4c2(t)
	dir := t.TempDir()
	httpAddr, mqttAddr := testbroker.FreeAddr(t), testbroker.FreeAddr(t)
	t.Setenv("GODEBUG", "fips140=only")
	p := startProc(t, bin, "serve", "--suite", "fips", "--data-dir", dir, "--http-listen", httpAddr, "--mqtt-listen", mqttAddr)
	os.Unsetenv("GODEBUG") // the test process itself is not in FIPS-only mode
	token := p.adminToken(t)
	base := "http://" + httpAddr
	waitHealthy(t, base, p)
	api := func(method, path string, body any, want ...int) []byte {
		t.Helper()
		code, out := httpDo(t, method, base+path, token, body)
		for _, w := range want {
			if code == w {
				return out
			}
		}
		t.Fatalf("%s %s: %d %s", method, path, code, out)
		return nil
	}
	s, err := suites.ByName("fips")
	if err != nil {
		t.Fatal(err)
	}
	key, err := s.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	api(nethttp.MethodPost, "/api/v1/clients", map[string]string{"name": "fips-dev", "key": hex.EncodeToString(key), "role": "both"}, nethttp.StatusCreated)
	api(nethttp.MethodPost, "/api/v1/topics", map[string]string{"topic": "fips-topic"}, nethttp.StatusCreated)
	c, err := client.New(client.Config{Suite: s, Mode: core.SymKey, Name: "fips-dev", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e4mqtt.Connect(context.Background(), c, e4mqtt.Config{BrokerURL: "tcp://" + mqttAddr})
	if err != nil {
		t.Fatalf("device: %v", err)
	}
	defer d.Close()
	api(nethttp.MethodPut, "/api/v1/clients/fips-dev/topics/fips-topic", nil, nethttp.StatusNoContent, nethttp.StatusOK)
	holdsCurrent := func() bool {
		var k struct {
			Key string `json:"key"`
		}
		if err := json.Unmarshal(api(nethttp.MethodPost, "/api/v1/export/topics/fips-topic", nil, nethttp.StatusOK), &k); err != nil {
			t.Fatal(err)
		}
		want, _ := hex.DecodeString(k.Key)
		tk, ok := c.State().Topics[hex.EncodeToString(s.HashTopic("fips-topic"))]
		return ok && bytes.Equal(tk.Key, want)
	}
	waitFor(t, "the device holds the topic key", holdsCurrent)
	api(nethttp.MethodPost, "/api/v1/topics/fips-topic/rotate", nil, nethttp.StatusOK)
	waitFor(t, "the device holds the rotated key", holdsCurrent)
	stopProc(t, p, 20*time.Second)
}
