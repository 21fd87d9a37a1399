package benchmarks

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/client/credential"
	"github.com/e4c2/e4c2/suites"
	"github.com/e4c2/e4c2/suites/core"
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
	// At is when the last device reached the armed goal (wall clock, Unix
	// nanoseconds): the parent and the farm share the machine's clock, and
	// the goal may be reached before the parent could tell the farm which
	// key to expect.
	At    int64  `json:"at,omitempty"`
	Error string `json:"error,omitempty"`
}

// keyDigest is how the farm and the parent compare a device's topic key
// with the C2's without the key crossing the pipe again or being printed:
// a SHA-256 with a label of this benchmark.
func keyDigest(key []byte) []byte {
	h := sha256.New()
	h.Write([]byte("e4c2-bench-key-digest:"))
	h.Write(key)
	return h.Sum(nil)
}

// Arm modes of the farm.
const (
	armOff = iota
	armKey // done when every device holds the expected topic key
	armRaw // done when every device received one message (broker floor)
)

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
	name string
	c    *client.Client
	conn *liteConn
	mu   sync.Mutex
	held []byte // digest of the topic key the device holds
	at   int64  // when held last changed (or, raw, the message came), Unix ns
	done bool   // reached the armed goal
}

// deviceAuth is the device's MQTT identity and credential, as the
// authenticating broker checks it (client/credential). The password is
// derived from the device's key and is as secret: it only goes into the
// CONNECT packet.
func deviceAuth(c *client.Client, key []byte) (liteAuth, error) {
	id := c.ID()
	a := liteAuth{ClientID: credential.ClientID(id), Username: credential.Username(id)}
	if c.Mode() == core.SymKey {
		a.Password = credential.SKPassword(key, id)
		return a, nil
	}
	pk, ok := c.Suite().(core.PKSuite)
	if !ok {
		return a, fmt.Errorf("suite %s has no PK mode", c.Suite().Name())
	}
	ident, err := pk.ParseIdentity(key)
	if err != nil {
		return a, fmt.Errorf("device identity: %w", err)
	}
	if a.Password, err = credential.PKPassword(pk, ident, id, time.Now()); err != nil {
		return a, fmt.Errorf("device credential: %w", err)
	}
	return a, nil
}

// runFarm is the child side: connect every device, then obey "arm",
// "arm raw", "expect <digest>", "count" and "quit" lines. Any device
// error (a command it cannot apply, a connection the broker closed) is
// reported as an "error" event at once: a run with a failed device is not
// a result.
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
	f, err := newFarmChild(&spec, out)
	if err != nil {
		return err
	}
	if err := f.connect(); err != nil {
		f.emit(farmEvent{Event: "error", Error: err.Error()})
		return err
	}
	f.emit(farmEvent{Event: "connected", N: len(f.devs)})
	for sc.Scan() {
		if quit, err := f.command(sc.Text()); quit || err != nil {
			return err
		}
	}
	return sc.Err()
}

// farmChild is the farm process's state, shared by its command loop and
// the devices' receiving goroutines.
type farmChild struct {
	broker  string
	hashHex string // the hashed topic whose key the devices are watched for
	devs    []*farmDev
	auths   []liteAuth

	outMu    sync.Mutex
	enc      *json.Encoder
	reported atomic.Bool // an error was reported (only the first is)

	armed                   atomic.Int32
	quitting                atomic.Bool
	commands, errs, applyNS atomic.Int64
	// goal is the armed state: the expected key digest (nil until the
	// parent sends it), how many devices reached the goal and when the
	// last one did.
	goal struct {
		sync.Mutex
		expect []byte
		n      int
		last   int64
	}
}

// newFarmChild builds the devices of spec and wipes their keys from it.
func newFarmChild(spec *farmSpec, out io.Writer) (*farmChild, error) {
	mode, err := suites.ParseMode(spec.Mode)
	if err != nil {
		return nil, err
	}
	suite, err := suites.ForMode(spec.Suite, mode)
	if err != nil {
		return nil, err
	}
	f := &farmChild{
		broker:  spec.Broker,
		hashHex: hex.EncodeToString(suite.HashTopic(spec.Topic)),
		devs:    make([]*farmDev, len(spec.Devices)),
		auths:   make([]liteAuth, len(spec.Devices)),
		enc:     json.NewEncoder(out),
	}
	for i, d := range spec.Devices {
		c, err := client.New(client.Config{Suite: suite, Mode: mode, Name: d.Name, Key: d.Key, C2PublicKey: spec.C2Pub})
		if err != nil {
			return nil, fmt.Errorf("device %s: %w", d.Name, err)
		}
		if f.auths[i], err = deviceAuth(c, d.Key); err != nil {
			return nil, fmt.Errorf("device %s: %w", d.Name, err)
		}
		clear(d.Key)
		f.devs[i] = &farmDev{name: d.Name, c: c}
	}
	spec.Devices = nil
	return f, nil
}

func (f *farmChild) emit(e farmEvent) {
	f.outMu.Lock()
	defer f.outMu.Unlock()
	_ = f.enc.Encode(e)
}

func (f *farmChild) fail(format string, args ...any) {
	if f.reported.CompareAndSwap(false, true) {
		f.emit(farmEvent{Event: "error", Error: fmt.Sprintf(format, args...)})
	}
}

func (f *farmChild) topicKey(d *farmDev) []byte {
	if tk, ok := d.c.State().Topics[f.hashHex]; ok {
		return tk.Key
	}
	return nil
}

// reach marks d as at the goal and reports "done" when it is the last
// device. d.mu is held, goal not.
func (f *farmChild) reach(d *farmDev) {
	d.done = true
	f.goal.Lock()
	f.goal.n++
	f.goal.last = max(f.goal.last, d.at)
	all, last := f.goal.n == len(f.devs), f.goal.last
	f.goal.Unlock()
	if all {
		f.emit(farmEvent{Event: "done", N: len(f.devs), Commands: f.commands.Load(), Errors: f.errs.Load(),
			ApplyMS: float64(f.applyNS.Load()) / 1e6, At: last})
	}
}

// observe records a change of d's topic key and checks the goal.
func (f *farmChild) observe(d *farmDev, now int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var dg []byte
	if k := f.topicKey(d); k != nil {
		dg = keyDigest(k)
	}
	if !bytes.Equal(dg, d.held) {
		d.held, d.at = dg, now
	}
	if f.armed.Load() != armKey || d.done || d.held == nil {
		return
	}
	f.goal.Lock()
	exp := f.goal.expect
	f.goal.Unlock()
	if exp != nil && bytes.Equal(d.held, exp) {
		f.reach(d)
	}
}

// connect connects every device, 32 at a time: a connection storm of
// thousands at once would measure the accept backlog, not the C2.
func (f *farmChild) connect() error {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	var connErr atomic.Pointer[error]
	for i, d := range f.devs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			lc, err := dialDevice(f.broker, f.auths[i], d)
			if err != nil {
				err = fmt.Errorf("device %s: %w", d.name, err)
				connErr.Store(&err)
				return
			}
			d.conn = lc
			go f.serve(d, lc)
		}()
	}
	wg.Wait()
	if p := connErr.Load(); p != nil {
		return *p
	}
	return nil
}

// dialDevice connects d and subscribes it to its control topic, with a
// few tries: a loaded broker may refuse a connection of the storm.
func dialDevice(broker string, auth liteAuth, d *farmDev) (*liteConn, error) {
	var lc *liteConn
	var err error
	for try := 0; try < 5; try++ {
		lc, err = liteDial(broker, auth, 30*time.Second)
		if err == nil {
			err = lc.Subscribe(d.c.ControlTopic(), 30*time.Second)
			if err == nil {
				return lc, nil
			}
			lc.c.Close()
		}
		time.Sleep(time.Duration(100*(try+1)) * time.Millisecond)
	}
	return nil, err
}

// serve hands d's messages to its device library until the connection
// closes; a close the farm did not ask for is a device error.
func (f *farmChild) serve(d *farmDev, lc *liteConn) {
	err := lc.Serve(func(topic string, payload []byte) { f.receive(d, topic, payload) })
	if !f.quitting.Load() {
		f.fail("device %s: connection closed by the broker: %v", d.name, err)
	}
}

func (f *farmChild) receive(d *farmDev, topic string, payload []byte) {
	now := time.Now().UnixNano()
	if f.armed.Load() == armRaw {
		d.mu.Lock()
		if !d.done {
			d.at = now
			f.reach(d)
		}
		d.mu.Unlock()
		return
	}
	t0 := time.Now()
	_, isCmd, err := d.c.Unprotect(payload, topic)
	f.applyNS.Add(int64(time.Since(t0)))
	if isCmd {
		f.commands.Add(1)
	}
	if err != nil {
		f.errs.Add(1)
		f.fail("device %s: %v", d.name, err)
	}
	f.observe(d, now)
}

// command obeys one line of the parent; quit reports a "quit".
func (f *farmChild) command(line string) (quit bool, err error) {
	cmd, arg, _ := strings.Cut(line, " ")
	switch cmd {
	case "arm":
		f.arm(arg == "raw")
	case "expect":
		return false, f.expect(arg)
	case "count":
		f.emit(farmEvent{Event: "count", N: len(f.devs), Commands: f.commands.Load(), Errors: f.errs.Load()})
	case "quit":
		f.quitting.Store(true)
		for _, d := range f.devs {
			_ = d.conn.Close()
		}
		return true, nil
	default:
		return false, fmt.Errorf("unknown farm command %q", line)
	}
	return false, nil
}

// arm resets the goal: every device has to reach it again.
func (f *farmChild) arm(raw bool) {
	f.armed.Store(armOff)
	f.goal.Lock()
	f.goal.expect, f.goal.n, f.goal.last = nil, 0, 0
	f.goal.Unlock()
	for _, d := range f.devs {
		d.mu.Lock()
		d.done = false
		d.mu.Unlock()
	}
	f.applyNS.Store(0)
	if raw {
		f.armed.Store(armRaw)
	} else {
		f.armed.Store(armKey)
	}
	f.emit(farmEvent{Event: "armed", N: len(f.devs)})
}

// expect sets the goal's key digest (hex) and checks every device
// against it.
func (f *farmChild) expect(arg string) error {
	exp, err := hex.DecodeString(arg)
	if err != nil || len(exp) != sha256.Size {
		return fmt.Errorf("expect: bad digest")
	}
	f.goal.Lock()
	f.goal.expect = exp
	f.goal.Unlock()
	// A device whose key changed but whose Serve goroutine has not
	// observed it yet is stamped now: at worst a late time.
	now := time.Now().UnixNano()
	for _, d := range f.devs {
		f.observe(d, now)
	}
	return nil
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

// arm starts a measurement: the next "done" comes when every device holds
// the key whose digest expect sends (raw false), or has received one
// message of any content (raw true: the broker floor, no device library).
func (f *farm) arm(raw bool) error {
	cmd := "arm"
	if raw {
		cmd = "arm raw"
	}
	if err := f.send(cmd); err != nil {
		return err
	}
	_, err := f.wait("armed", time.Minute)
	return err
}

// expect tells the farm the digest (keyDigest) of the key every device
// must hold.
func (f *farm) expect(digest []byte) error {
	return f.send("expect " + hex.EncodeToString(digest))
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
