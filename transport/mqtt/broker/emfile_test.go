package broker

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

const emfileChildEnv = "E4C2_BROKER_EMFILE_CHILD"

// TestListenerSurvivesRealEMFILE runs the broker in a child process (the
// test binary again) whose RLIMIT_NOFILE is lowered until accept fails
// with EMFILE for real, then frees descriptors and checks that a new MQTT
// client connects. mochi's own TCP listener would have returned from its
// accept loop at the first error and never accepted again.
func TestListenerSurvivesRealEMFILE(t *testing.T) {
	if os.Getenv(emfileChildEnv) == "1" {
		emfileChild(t)
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestListenerSurvivesRealEMFILE$", "-test.v")
	cmd.Env = append(os.Environ(), emfileChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "EMFILE-CHILD: recovered") {
		t.Fatalf("child failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "EMFILE-CHILD: accept errors") {
		t.Fatalf("child never hit an accept error:\n%s", out)
	}
}

func emfileChild(t *testing.T) {
	b := startBroker(t, Config{MaxConns: 1 << 20, AllowAnonymous: true})
	addr := b.Addr()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	lim := syscall.Rlimit{Cur: uint64(len(fds) + 40), Max: old.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// Open connections until the process is out of descriptors: the
	// broker's accepts then fail with EMFILE while the kernel keeps
	// completing handshakes into the backlog.
	var conns []net.Conn
	var files []*os.File
	for range 200 {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		files = append(files, f)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.ListenerStats().AcceptErrors == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no accept error with %d connections open (stats %+v)", len(conns), b.ListenerStats())
		}
		// One more dial so that the listener has something to accept.
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			conns = append(conns, c)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("EMFILE-CHILD: accept errors %d with %d connections", b.ListenerStats().AcceptErrors, len(conns))
	time.Sleep(100 * time.Millisecond) // let it fail a few more times
	for _, f := range files {
		f.Close()
	}
	for _, c := range conns {
		c.Close()
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if _, err := connect(t, addr, "after-emfile", "", ""); err != nil {
		t.Fatalf("connect after EMFILE: %v (stats %+v)", err, b.ListenerStats())
	}
	t.Logf("EMFILE-CHILD: recovered (stats %+v)", b.ListenerStats())
}
