// Package testbroker starts real MQTT brokers for tests in other packages:
// an external mosquitto process on a free loopback port (skipping the test
// with a clear message when mosquitto is not installed; .ci/run installs
// it), and helpers to find free ports.
package testbroker

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// MosquittoPath is where Debian's mosquitto package installs the broker.
const MosquittoPath = "/usr/sbin/mosquitto"

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitPort waits until addr accepts connections (up) or refuses them.
func WaitPort(t testing.TB, addr string, up bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if c != nil {
			c.Close()
		}
		if (err == nil) == up {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testbroker: %s never became reachable=%v", addr, up)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Mosquitto is a running mosquitto process.
type Mosquitto struct {
	t    testing.TB
	Addr string
	conf string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartMosquitto starts mosquitto with anonymous access on a free loopback
// port and stops it when the test ends. maxInflight sets
// max_inflight_messages (0 keeps mosquitto's default of 20).
func StartMosquitto(t testing.TB, maxInflight int) *Mosquitto {
	t.Helper()
	return startMosquitto(t, maxInflight, false)
}

// StartMosquittoPersistent is StartMosquitto with persistence on: mosquitto
// writes its sessions, subscriptions and queued QoS 1/2 messages to a file
// in a temporary directory when it stops (SIGTERM) and loads them when it
// starts again, so Stop then Start is a broker outage that keeps what the
// broker had confirmed. Without it a restart drops every persistent session,
// and with them the commands held for offline devices.
func StartMosquittoPersistent(t testing.TB, maxInflight int) *Mosquitto {
	t.Helper()
	return startMosquitto(t, maxInflight, true)
}

// StartMosquittoWith is StartMosquitto with extra lines appended to its
// configuration (e.g. listener options or log settings).
func StartMosquittoWith(t testing.TB, extra string) *Mosquitto {
	t.Helper()
	return startMosquittoConf(t, 0, false, extra)
}

func startMosquitto(t testing.TB, maxInflight int, persist bool) *Mosquitto {
	t.Helper()
	return startMosquittoConf(t, maxInflight, persist, "")
}

func startMosquittoConf(t testing.TB, maxInflight int, persist bool, extra string) *Mosquitto {
	t.Helper()
	if _, err := os.Stat(MosquittoPath); err != nil {
		t.Skipf("mosquitto is not installed at %s (apt-get install mosquitto; .ci/run does it)", MosquittoPath)
	}
	dir := t.TempDir()
	m := &Mosquitto{t: t, Addr: FreeAddr(t)}
	_, port, _ := net.SplitHostPort(m.Addr)
	conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\n"+
		"log_dest file %s\nmax_queued_messages 1000000\nmax_connections -1\n", port, filepath.Join(dir, "mosquitto.log"))
	if persist {
		// persistence_location must end with a separator; mosquitto
		// saves at a graceful shutdown, which is all Stop (SIGTERM) needs.
		// autosave_interval 1: a kill -9 loses at most the last second,
		// like a deployment that saves often.
		conf += fmt.Sprintf("persistence true\npersistence_location %s%c\npersistence_file mosquitto.db\nautosave_interval 1\n", dir, filepath.Separator)
	} else {
		conf += "persistence false\n"
	}
	if maxInflight > 0 {
		conf += fmt.Sprintf("max_inflight_messages %d\n", maxInflight)
	}
	if os.Geteuid() == 0 {
		conf += "user root\n"
	}
	conf += extra
	m.conf = filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(m.Stop)
	return m
}

// URL is the broker's tcp:// URL.
func (m *Mosquitto) URL() string { return "tcp://" + m.Addr }

// Start (re)starts the process on the same port.
func (m *Mosquitto) Start() {
	m.t.Helper()
	m.cmd = exec.Command(MosquittoPath, "-c", m.conf)
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("testbroker: start mosquitto: %v", err)
	}
	m.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(m.cmd, m.done)
	WaitPort(m.t, m.Addr, true)
}

// Stop ends the process gracefully.
func (m *Mosquitto) Stop() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	m.cmd = nil
}

// Kill ends the process with SIGKILL: a broker crash. Whatever it had not
// saved is gone.
func (m *Mosquitto) Kill() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.done
	m.cmd = nil
	WaitPort(m.t, m.Addr, false)
}
