package benchmarks

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// MosquittoPath is where Debian's mosquitto package installs the broker.
const MosquittoPath = "/usr/sbin/mosquitto"

// mosquitto is a broker process started for a fan-out run.
type mosquitto struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// startMosquitto runs mosquitto on a free loopback port with anonymous
// access, no persistence, no connection limit and its default
// max_inflight_messages (20: the C2's publisher window stays below it)
// unless maxInflight is set.
func startMosquitto(dir string, maxInflight int) (*mosquitto, error) {
	if _, err := os.Stat(MosquittoPath); err != nil {
		return nil, fmt.Errorf("mosquitto is not installed at %s (apt-get install mosquitto): %w", MosquittoPath, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n"+
		"max_queued_messages 1000000\nmax_connections -1\n", port)
	if maxInflight > 0 {
		conf += fmt.Sprintf("max_inflight_messages %d\n", maxInflight)
	}
	if os.Geteuid() == 0 {
		conf += "user root\n"
	}
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	m := &mosquitto{addr: addr, cmd: exec.Command(MosquittoPath, "-c", path), done: make(chan struct{})}
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start mosquitto: %w", err)
	}
	go func() { _ = m.cmd.Wait(); close(m.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return m, nil
		}
		select {
		case <-m.done:
			return nil, fmt.Errorf("mosquitto exited at start")
		default:
		}
		if time.Now().After(deadline) {
			m.stop()
			return nil, fmt.Errorf("mosquitto did not listen on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (m *mosquitto) stop() {
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}
