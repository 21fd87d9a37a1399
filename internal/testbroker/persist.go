package testbroker

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// StartMosquittoPersistent is StartMosquitto with persistence on: mosquitto
// writes its sessions, subscriptions and queued QoS 1/2 messages to a file
// in a temporary directory when it stops (SIGTERM) and loads them when it
// starts again, so Stop then Start is a broker outage that keeps what the
// broker had confirmed. Without it a restart drops every persistent session,
// and with them the commands held for offline devices.
func StartMosquittoPersistent(t testing.TB, maxInflight int) *Mosquitto {
	t.Helper()
	if _, err := os.Stat(MosquittoPath); err != nil {
		t.Skipf("mosquitto is not installed at %s (apt-get install mosquitto; .ci/run does it)", MosquittoPath)
	}
	dir := t.TempDir()
	m := &Mosquitto{t: t, Addr: FreeAddr(t)}
	_, port, _ := net.SplitHostPort(m.Addr)
	// persistence_location must end with a separator. mosquitto always
	// saves at a graceful shutdown, which is all Stop (SIGTERM) needs.
	conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\n"+
		"persistence true\npersistence_location %s%c\npersistence_file mosquitto.db\n"+
		"log_dest file %s\nmax_queued_messages 1000000\nmax_connections -1\n",
		port, dir, filepath.Separator, filepath.Join(dir, "mosquitto.log"))
	if maxInflight > 0 {
		conf += fmt.Sprintf("max_inflight_messages %d\n", maxInflight)
	}
	if os.Geteuid() == 0 {
		conf += "user root\n"
	}
	m.conf = filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(m.Stop)
	return m
}
