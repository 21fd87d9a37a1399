package broker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Memory per idle connected device, ours against mosquitto:
//
//	go test -run '^$' -bench BenchmarkIdleDeviceMemory -benchtime 1x ./transport/mqtt/broker/
//
// E4C2_BENCH_DEVICES changes the number of devices (default 10,000). The
// broker runs in a child process (this test binary again, in
// TestMemChild) so that its RSS is its own; the clients live here. The
// broker persists sessions as `e4c2 serve` configures it;
// E4C2_BENCH_PERSIST=off leaves that out. E4C2_HEAP_PROFILE=FILE makes
// the child write a heap profile of every allocation while the devices
// are idle, and FILE.commanded after the round of commands (compare them
// with pprof -base).
//
// It reports the growth of the broker's RSS per device twice: idle devices
// that only connected and subscribed ("B/device"), and the same devices
// after one confirmed command each ("B/device-commanded"), which is what
// a fleet looks like once the C2 has talked to it. With the child's
// runtime figures split into goroutine stacks and heap, per device.

// deliverWorkers is how many goroutines of the C2 call Deliver at once in
// the benchmark's delivery round.
const deliverWorkers = 256

const (
	memChildEnv  = "E4C2_BROKER_MEM_CHILD"
	benchDevsEnv = "E4C2_BENCH_DEVICES"
	// benchPersistEnv=off runs the broker without its persistence file.
	benchPersistEnv = "E4C2_BENCH_PERSIST"
	// memStoreEnv is the child's persistence file: in a directory of the
	// parent's, removed by the parent (the child is killed).
	memStoreEnv   = "E4C2_BROKER_MEM_STORE"
	benchKeepLive = 600 // seconds: no keepalive traffic during the run
)

// TestMemChild is the broker side of BenchmarkIdleDeviceMemory. It reads
// commands on stdin: "gc" collects garbage and returns freed memory to the
// OS (the steady state of a long-running broker, which the runtime's
// scavenger reaches by itself, slowly), "online" prints the number of
// devices online. EOF ends it.
func TestMemChild(t *testing.T) {
	if os.Getenv(memChildEnv) == "" {
		t.Skip("helper process of BenchmarkIdleDeviceMemory")
	}
	if os.Getenv("E4C2_HEAP_PROFILE") != "" {
		// Every allocation in the profile, not a 512 KiB sample: a
		// device's share is a few hundred bytes per call site.
		runtime.MemProfileRate = 1
	}
	n, _ := strconv.Atoi(os.Getenv(benchDevsEnv))
	auth := newAuthority()
	ids := make([][16]byte, n)
	for i := range ids {
		ids[i] = auth.device(i)
	}
	// Sessions persisted as `e4c2 serve` does (its data directory's
	// broker.db, without fsync): the store's records and the file's
	// mapped pages are part of each device's cost.
	b, err := New(Config{Address: "127.0.0.1:0", Authority: auth, MaxConns: n + 100, Logger: quietLogger(),
		PersistPath: os.Getenv(memStoreEnv)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	runtime.GC()
	debug.FreeOSMemory()
	fmt.Printf("ADDR %s\n", b.Addr())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "gc":
			// Several cycles: each one halves the stacks of goroutines
			// that use less than a quarter of theirs, as the periodic GC
			// of an idle broker does within minutes.
			for range 5 {
				runtime.GC()
			}
			debug.FreeOSMemory()
			fmt.Println("OK")
		case "stats":
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			fmt.Printf("heapinuse=%d stackinuse=%d sys=%d goroutines=%d heapobjects=%d\n", m.HeapInuse, m.StackInuse, m.Sys, runtime.NumGoroutine(), m.HeapObjects)
		case "heap":
			f, err := os.Create(os.Getenv("E4C2_HEAP_PROFILE") + arg)
			if err == nil {
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
			fmt.Println("OK")
		case "deliver":
			// One Deliver to every device, from deliverWorkers goroutines.
			start := time.Now()
			jobs := make(chan [16]byte)
			var mu sync.Mutex
			var okN, errN int
			var first error
			var wg sync.WaitGroup
			for range deliverWorkers {
				wg.Go(func() {
					for id := range jobs {
						ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
						err := b.Deliver(ctx, id, []byte("command"))
						cancel()
						mu.Lock()
						if err != nil {
							errN++
							if first == nil {
								first = err
							}
						} else {
							okN++
						}
						mu.Unlock()
					}
				})
			}
			for _, id := range ids {
				jobs <- id
			}
			close(jobs)
			wg.Wait()
			fmt.Printf("ok=%d errors=%d first=%v elapsed=%s\n", okN, errN, first, time.Since(start))
		case "online":
			online := 0
			for _, id := range ids {
				if b.Online(id) {
					online++
				}
			}
			fmt.Println(online)
		}
	}
}

// child is a process under measurement.
type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func (c *child) ask(cmd string) (string, error) {
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		return "", fmt.Errorf("child %s: %w", cmd, err)
	}
	line, err := c.out.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("child %s: %w", cmd, err)
	}
	return strings.TrimSpace(line), nil
}

func (c *child) stop() {
	if c.in != nil {
		c.in.Close()
	}
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}

// rssOf returns VmRSS of a process in bytes.
func rssOf(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("rss: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("rss: %w", err)
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("rss: no VmRSS")
}

// connectDevices opens n raw MQTT 3.1.1 connections that CONNECT as
// devices and SUBSCRIBE to their control topic at QoS 2, and returns them
// once every SUBACK is in.
func connectDevices(addr string, auth *testAuthority, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	jobs := make(chan int)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := range jobs {
				c, err := connectDevice(addr, auth, i)
				if err != nil {
					select {
					case errc <- fmt.Errorf("device %d: %w", i, err):
					default:
					}
					continue
				}
				conns[i] = c
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errc:
		closeAll(conns)
		return nil, err
	default:
	}
	return conns, nil
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

func connectDevice(addr string, auth *testAuthority, i int) (net.Conn, error) {
	id := auth.device(i)
	var buf bytes.Buffer
	con := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: clientID(id), Clean: true,
			Keepalive: benchKeepLive, UsernameFlag: true, Username: []byte(user(id)),
			PasswordFlag: true, Password: []byte(auth.password(id))}}
	if err := con.ConnectEncode(&buf); err != nil {
		return nil, err
	}
	sub := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, ProtocolVersion: 4,
		PacketID: 1, Filters: packets.Subscriptions{{Filter: ControlTopic(id), Qos: 2}}}
	if err := sub.SubscribeEncode(&buf); err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(buf.Bytes()); err != nil {
		c.Close()
		return nil, err
	}
	// CONNACK (4 bytes) then SUBACK (5 bytes).
	var ack [9]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		c.Close()
		return nil, err
	}
	if ack[0] != 0x20 || ack[3] != 0 || ack[4] != 0x90 || ack[8] != 2 {
		c.Close()
		return nil, fmt.Errorf("refused: % x", ack)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// runtimeStats are the figures the broker child prints for "stats".
type runtimeStats struct {
	heap, stack, sys  int64
	goroutines, heapN int64
}

func (c *child) stats() (runtimeStats, error) {
	var st runtimeStats
	line, err := c.ask("stats")
	if err != nil {
		return st, err
	}
	if _, err := fmt.Sscanf(line, "heapinuse=%d stackinuse=%d sys=%d goroutines=%d heapobjects=%d",
		&st.heap, &st.stack, &st.sys, &st.goroutines, &st.heapN); err != nil {
		return st, fmt.Errorf("child stats %q: %w", line, err)
	}
	return st, nil
}

// rssGrowth is what measure found.
type rssGrowth struct {
	before, raw, settled int64 // RSS before, after connecting, after settle
	after                int64 // RSS after inspect and settle (0: not measured)
	n                    int
}

func (g rssGrowth) rawPer() float64     { return float64(g.raw-g.before) / float64(g.n) }
func (g rssGrowth) settledPer() float64 { return float64(g.settled-g.before) / float64(g.n) }
func (g rssGrowth) afterPer() float64   { return float64(g.after-g.before) / float64(g.n) }

// measure connects n devices to the process pid listening on addr and
// returns its RSS growth. settle, if set, runs before the first reading,
// before the one after connecting and, when inspect is set too, after
// inspect for the last reading; inspect, if set, runs while the devices
// are still connected.
func measure(pid int, addr string, auth *testAuthority, n int, settle func() error, inspect func([]net.Conn)) (g rssGrowth, err error) {
	g.n = n
	if settle != nil {
		if err := settle(); err != nil {
			return g, err
		}
	}
	if g.before, err = rssOf(pid); err != nil {
		return g, err
	}
	conns, err := connectDevices(addr, auth, n)
	if err != nil {
		return g, err
	}
	defer closeAll(conns)
	if g.raw, err = rssOf(pid); err != nil {
		return g, err
	}
	g.settled = g.raw
	if settle != nil {
		if err := settle(); err != nil {
			return g, err
		}
		if g.settled, err = rssOf(pid); err != nil {
			return g, err
		}
	}
	if inspect != nil {
		inspect(conns)
		if settle != nil {
			if err := settle(); err != nil {
				return g, err
			}
			if g.after, err = rssOf(pid); err != nil {
				return g, err
			}
		}
	}
	return g, nil
}

func BenchmarkIdleDeviceMemory(b *testing.B) {
	n := 10000
	if s := os.Getenv(benchDevsEnv); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			b.Fatalf("%s=%q", benchDevsEnv, s)
		}
		n = v
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < uint64(n+200) {
		rl.Cur = min(rl.Max, uint64(n+200))
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
		if rl.Cur < uint64(n+200) {
			b.Skipf("file limit %d too low for %d devices", rl.Cur, n)
		}
	}
	auth := newAuthority()

	// Ours, in a child process.
	cmd := exec.Command(os.Args[0], "-test.run=^TestMemChild$")
	cmd.Env = append(os.Environ(), memChildEnv+"=1", benchDevsEnv+"="+strconv.Itoa(n))
	if os.Getenv(benchPersistEnv) != "off" {
		cmd.Env = append(cmd.Env, memStoreEnv+"="+filepath.Join(b.TempDir(), "broker.db"))
	}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	ch := &child{cmd: cmd, in: in, out: bufio.NewReader(out)}
	defer ch.stop()
	line, err := ch.out.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ADDR ") {
		b.Fatalf("child: %q %v", line, err)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "ADDR "))
	b.ResetTimer()
	// The runtime's figures after each settle: before connecting, idle,
	// commanded.
	var stats []runtimeStats
	ours, err := measure(cmd.Process.Pid, addr, auth, n, func() error {
		if _, err := ch.ask("gc"); err != nil {
			return err
		}
		st, err := ch.stats()
		stats = append(stats, st)
		return err
	}, func(conns []net.Conn) {
		if os.Getenv("E4C2_HEAP_PROFILE") != "" {
			_, _ = ch.ask("heap")
		}
		// Then a round of confirmed deliveries: the devices answer QoS 2.
		for _, c := range conns {
			rc := &rawClient{conn: c, r: bufio.NewReader(c), version: 4}
			go rc.serveQoS2(nil)
		}
		res, err := ch.ask("deliver")
		if err != nil {
			b.Error(err)
			return
		}
		b.Logf("Deliver to each of %d devices from %d goroutines: %s", n, deliverWorkers, res)
		if !strings.HasPrefix(res, fmt.Sprintf("ok=%d errors=0", n)) {
			b.Errorf("deliveries failed: %s", res)
		}
		if os.Getenv("E4C2_HEAP_PROFILE") != "" {
			_, _ = ch.ask("gc")
			_, _ = ch.ask("heap .commanded")
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(ours.settledPer(), "B/device")
	b.ReportMetric(ours.rawPer(), "B/device-before-gc")
	b.ReportMetric(ours.afterPer(), "B/device-commanded")
	b.Logf("e4c2 broker: %d devices, RSS %d -> %d bytes, %d after GC: %.0f B per device (%.0f before GC); "+
		"after one confirmed command each: %d bytes, %.0f B per device",
		n, ours.before, ours.raw, ours.settled, ours.settledPer(), ours.rawPer(), ours.after, ours.afterPer())
	if len(stats) == 3 {
		per := func(st runtimeStats, f func(runtimeStats) int64) float64 {
			return float64(f(st)-f(stats[0])) / float64(n)
		}
		stack := func(st runtimeStats) int64 { return st.stack }
		heap := func(st runtimeStats) int64 { return st.heap }
		b.ReportMetric(per(stats[1], stack), "stack-B/device")
		b.ReportMetric(per(stats[1], heap), "heap-B/device")
		b.ReportMetric(per(stats[2], stack), "stack-B/device-commanded")
		b.ReportMetric(per(stats[2], heap), "heap-B/device-commanded")
		for i, what := range []string{"before connecting", "idle", "commanded"} {
			b.Logf("e4c2 broker runtime, %s: heap in use %d, stacks %d, goroutines %d, heap objects %d",
				what, stats[i].heap, stats[i].stack, stats[i].goroutines, stats[i].heapN)
		}
	}
	ch.stop()

	// mosquitto, if installed.
	mosq, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr == nil {
			mosq, err = "/usr/sbin/mosquitto", nil
		}
	}
	if err != nil {
		b.Log("mosquitto not installed: no comparison")
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	maddr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(maddr)
	conf := filepath.Join(b.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(conf, []byte("listener "+port+" 127.0.0.1\nallow_anonymous true\nmax_connections -1\npersistence false\nlog_dest none\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	mc := exec.Command(mosq, "-c", conf)
	if err := mc.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = mc.Process.Kill(); _ = mc.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", maddr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("mosquitto does not listen on %s: %v", maddr, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a process we cannot signal
	}
	theirs, err := measure(mc.Process.Pid, maddr, auth, n, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(theirs.rawPer(), "mosquitto-B/conn")
	b.Logf("mosquitto: %d connections, RSS %d -> %d bytes: %.0f B per connection", n, theirs.before, theirs.raw, theirs.rawPer())
}
