package benchmarks

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/suites"
)

// FarmEnv is the environment variable that turns an executable embedding
// this package into a device farm (see RunFarmIfChild).
const FarmEnv = "E4C2_BENCH_DEVICE_FARM"

// farmSpec is the first line the parent sends: the broker and the devices.
// Device keys cross a pipe between two processes of one benchmark run;
// they are never printed or logged.
type farmSpec struct {
	Broker  string       `json:"broker"` // host:port
	Suite   string       `json:"suite"`
	Mode    string       `json:"mode"`
	C2Pub   []byte       `json:"c2_pub,omitempty"`
	Topic   string       `json:"topic"`
	Devices []farmDevice `json:"devices"`
}

type farmDevice struct {
	Name string `json:"name"`
	Key  []byte `json:"key"`
}

// farmEvent is a line the farm writes to the parent.
type farmEvent struct {
	Event    string  `json:"event"` // connected, armed, done, count, error
	N        int     `json:"n,omitempty"`
	Commands int64   `json:"commands,omitempty"`
	Errors   int64   `json:"errors,omitempty"`
	ApplyMS  float64 `json:"apply_ms,omitempty"` // device-library time spent in Unprotect since arm
	Error    string  `json:"error,omitempty"`
}

// RunFarmIfChild runs the device farm and exits the process when FarmEnv is
// set; otherwise it returns at once. Every main that may run the
// benchmarks (e4c2 bench, e4c2-bench, the package's TestMain) calls it
// first.
func RunFarmIfChild() {
	if os.Getenv(FarmEnv) == "" {
		return
	}
	if err := runFarm(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "e4c2 bench: device farm: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// farmDev is one device of the farm.
type farmDev struct {
	c    *client.Client
	conn *liteConn
	mu   sync.Mutex
	base []byte // topic key when armed
	done bool
}

// runFarm is the child side: connect every device, then obey "arm",
// "count" and "quit" lines.
func runFarm(in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	if !sc.Scan() {
		return fmt.Errorf("no spec: %w", sc.Err())
	}
	var spec farmSpec
	if err := json.Unmarshal(sc.Bytes(), &spec); err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	var outMu sync.Mutex
	enc := json.NewEncoder(out)
	emit := func(e farmEvent) {
		outMu.Lock()
		defer outMu.Unlock()
		_ = enc.Encode(e)
	}
	mode, err := suites.ParseMode(spec.Mode)
	if err != nil {
		return err
	}
	suite, err := suites.ForMode(spec.Suite, mode)
	if err != nil {
		return err
	}
	hashHex := hex.EncodeToString(suite.HashTopic(spec.Topic))
	devs := make([]*farmDev, len(spec.Devices))
	for i, d := range spec.Devices {
		c, err := client.New(client.Config{Suite: suite, Mode: mode, Name: d.Name, Key: d.Key, C2PublicKey: spec.C2Pub})
		if err != nil {
			return fmt.Errorf("device %s: %w", d.Name, err)
		}
		clear(d.Key)
		devs[i] = &farmDev{c: c}
	}
	spec.Devices = nil

	var armed atomic.Bool
	var doneCount, commands, errs, applyNS atomic.Int64
	topicKey := func(d *farmDev) []byte {
		if tk, ok := d.c.State().Topics[hashHex]; ok {
			return tk.Key
		}
		return nil
	}
	check := func(d *farmDev) {
		if !armed.Load() {
			return
		}
		d.mu.Lock()
		changed := !d.done && !bytes.Equal(topicKey(d), d.base) && topicKey(d) != nil
		if changed {
			d.done = true
		}
		d.mu.Unlock()
		if changed && int(doneCount.Add(1)) == len(devs) {
			emit(farmEvent{Event: "done", N: len(devs), Commands: commands.Load(), Errors: errs.Load(),
				ApplyMS: float64(applyNS.Load()) / 1e6})
		}
	}

	// Connect, 32 at a time: a connection storm of thousands at once
	// would measure the accept backlog, not the C2.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	var connErr atomic.Pointer[error]
	for _, d := range devs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			var lc *liteConn
			var err error
			for try := 0; try < 5; try++ {
				lc, err = liteDial(spec.Broker, "e4dev-"+hex.EncodeToString(d.c.ID()), 30*time.Second)
				if err == nil {
					err = lc.Subscribe(d.c.ControlTopic(), 30*time.Second)
					if err == nil {
						break
					}
					lc.c.Close()
				}
				time.Sleep(time.Duration(100*(try+1)) * time.Millisecond)
			}
			if err != nil {
				connErr.Store(&err)
				return
			}
			d.conn = lc
			go func() {
				_ = lc.Serve(func(topic string, payload []byte) {
					t0 := time.Now()
					_, isCmd, err := d.c.Unprotect(payload, topic)
					applyNS.Add(int64(time.Since(t0)))
					if isCmd {
						commands.Add(1)
					}
					if err != nil {
						errs.Add(1)
					}
					check(d)
				})
			}()
		}()
	}
	wg.Wait()
	if p := connErr.Load(); p != nil {
		emit(farmEvent{Event: "error", Error: (*p).Error()})
		return *p
	}
	emit(farmEvent{Event: "connected", N: len(devs)})

	for sc.Scan() {
		switch sc.Text() {
		case "arm":
			armed.Store(false)
			for _, d := range devs {
				d.mu.Lock()
				d.base, d.done = topicKey(d), false
				d.mu.Unlock()
			}
			doneCount.Store(0)
			applyNS.Store(0)
			armed.Store(true)
			emit(farmEvent{Event: "armed", N: len(devs)})
		case "count":
			emit(farmEvent{Event: "count", N: len(devs), Commands: commands.Load(), Errors: errs.Load()})
		case "quit":
			for _, d := range devs {
				_ = d.conn.Close()
			}
			return nil
		default:
			return fmt.Errorf("unknown farm command %q", sc.Text())
		}
	}
	return sc.Err()
}

// farm is the parent's handle on a device farm process.
type farm struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	events chan farmEvent
	done   chan error
}

// FarmCommand builds the command that starts a device farm: the same
// executable with args that reach a RunFarmIfChild call. Run fills in
// FarmEnv.
type FarmCommand func() *exec.Cmd

// startFarm starts the farm, sends spec and waits until every device is
// connected and subscribed.
func startFarm(mk FarmCommand, spec farmSpec, timeout time.Duration) (*farm, error) {
	cmd := mk()
	cmd.Env = append(os.Environ(), FarmEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start device farm: %w", err)
	}
	f := &farm{cmd: cmd, in: in, events: make(chan farmEvent, 16), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(outp)
		for sc.Scan() {
			var e farmEvent
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				f.events <- e
			}
		}
		close(f.events)
		f.done <- cmd.Wait()
	}()
	line, err := json.Marshal(spec)
	if err != nil {
		f.kill()
		return nil, err
	}
	if _, err := in.Write(append(line, '\n')); err != nil {
		f.kill()
		return nil, fmt.Errorf("send farm spec: %w", err)
	}
	if _, err := f.wait("connected", timeout); err != nil {
		f.kill()
		return nil, err
	}
	return f, nil
}

// errFarm reports a farm that failed or did not answer.
var errFarm = errors.New("device farm")

func (f *farm) wait(event string, timeout time.Duration) (farmEvent, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case e, ok := <-f.events:
			if !ok {
				return e, fmt.Errorf("%w: exited while waiting for %s", errFarm, event)
			}
			if e.Event == "error" {
				return e, fmt.Errorf("%w: %s", errFarm, e.Error)
			}
			if e.Event == event {
				return e, nil
			}
		case <-t.C:
			return farmEvent{}, fmt.Errorf("%w: no %q within %v", errFarm, event, timeout)
		}
	}
}

func (f *farm) send(cmd string) error {
	if _, err := io.WriteString(f.in, cmd+"\n"); err != nil {
		return fmt.Errorf("%w: %s: %w", errFarm, cmd, err)
	}
	return nil
}

// arm snapshots every device's topic key; the next "done" comes when every
// device holds another one.
func (f *farm) arm() error {
	if err := f.send("arm"); err != nil {
		return err
	}
	_, err := f.wait("armed", time.Minute)
	return err
}

func (f *farm) count() (farmEvent, error) {
	if err := f.send("count"); err != nil {
		return farmEvent{}, err
	}
	return f.wait("count", time.Minute)
}

// close asks the farm to disconnect its devices and waits for it.
func (f *farm) close() {
	_ = f.send("quit")
	_ = f.in.Close()
	select {
	case <-f.done:
	case <-time.After(20 * time.Second):
		f.kill()
	}
}

func (f *farm) kill() {
	_ = f.cmd.Process.Kill()
	_ = f.in.Close()
}
