package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/e4c2/e4c2/internal/testwait"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func startBroker(t *testing.T, cfg Config) *Broker {
	t.Helper()
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	cfg.Logger = quietLogger()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

type received struct {
	mu   sync.Mutex
	msgs []string
	ch   chan struct{}
}

func (r *received) handler(_ paho.Client, m paho.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m.Topic()+"="+string(m.Payload()))
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

func (r *received) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

func connect(t *testing.T, addr, id, user, pass string) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetUsername(user).SetPassword(pass).SetAutoReconnect(false).
		SetConnectTimeout(2 * time.Second).SetCleanSession(true)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(3 * time.Second) {
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, nil
}

func subscribe(t *testing.T, c paho.Client, filter string) *received {
	t.Helper()
	r := &received{ch: make(chan struct{}, 1)}
	tok := c.Subscribe(filter, 2, r.handler)
	if !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return r
}

func publish(c paho.Client, topic, payload string) error {
	tok := c.Publish(topic, 2, false, payload)
	if !tok.WaitTimeout(3 * time.Second) {
		return errors.New("publish timed out")
	}
	return tok.Error()
}

func TestControlTopicACL(t *testing.T) {
	auth := newAuthority()
	auth.publish["sensors/t"] = true
	devID := auth.device(1)
	b := startBroker(t, Config{C2: &Credentials{Username: "c2", Password: "c2-secret"},
		AllowAnonymous: true, Authority: auth})
	// A C2 monitor on "#" sees every message, control topics included.
	mon, err := connect(t, b.Addr(), "c2-monitor", "c2", "c2-secret")
	if err != nil {
		t.Fatal(err)
	}
	r := subscribe(t, mon, "#")
	// A legacy anonymous subscriber on "#" sees only non-control topics.
	anon, err := connect(t, b.Addr(), "anon-sub", "", "")
	if err != nil {
		t.Fatal(err)
	}
	ra := subscribe(t, anon, "#")

	// Publishing on a control topic, anonymously or as a device: mochi
	// disconnects an MQTT 3.1.1 client whose QoS>0 publish is not
	// authorised, and nothing is forwarded.
	dev, err := connect(t, b.Addr(), "dev", "", "")
	if err != nil {
		t.Fatal(err)
	}
	_ = publish(dev, "e4/00112233445566778899aabbccddeeff", "forged")
	dev2, err := connect(t, b.Addr(), "dev2", "", "")
	if err != nil {
		t.Fatal(err)
	}
	_ = publish(dev2, "e4", "forged-root")
	realDev, err := connect(t, b.Addr(), clientID(devID), user(devID), auth.password(devID))
	if err != nil {
		t.Fatal(err)
	}
	_ = publish(realDev, ControlTopic(devID), "forged-by-device")
	dev3, err := connect(t, b.Addr(), "dev3", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := publish(dev3, "sensors/t", "app"); err != nil {
		t.Fatalf("ordinary publish: %v", err)
	}

	// Wrong C2 password: refused at connect.
	if _, err := connect(t, b.Addr(), "fake-c2", "c2", "guess"); err == nil {
		t.Fatal("connect with the c2 username and a wrong password succeeded")
	}
	// The C2 over TCP with its credentials, and in process.
	c2, err := connect(t, b.Addr(), "e4c2-test", "c2", "c2-secret")
	if err != nil {
		t.Fatal(err)
	}
	if err := publish(c2, "e4/aa", "from-c2-tcp"); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("e4/bb", []byte("from-c2-inproc")); err != nil {
		t.Fatal(err)
	}
	// A marker after everything: once the monitor has it, anything the
	// broker forwarded before has arrived too (one connection, in order).
	if err := b.Publish("zz/marker", []byte("end")); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "marker", func() bool {
		return contains(r.snapshot(), "zz/marker=end") && contains(ra.snapshot(), "zz/marker=end")
	})
	got := r.snapshot()
	want := map[string]bool{"sensors/t=app": true, "e4/aa=from-c2-tcp": true, "e4/bb=from-c2-inproc": true, "zz/marker=end": true}
	if len(got) != len(want) {
		t.Fatalf("monitor got %q, want exactly %v", got, want)
	}
	for _, m := range got {
		if !want[m] {
			t.Fatalf("monitor got unexpected %q (all: %q)", m, got)
		}
	}
	if got := ra.snapshot(); len(got) != 2 || !contains(got, "sensors/t=app") {
		t.Fatalf("anonymous # subscriber got %q, want only sensors/t and the marker", got)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestDeviceAuth(t *testing.T) {
	b := startBroker(t, Config{Users: map[string]string{"dev1": "pw1"}})
	if _, err := connect(t, b.Addr(), "a", "", ""); err == nil {
		t.Fatal("anonymous connect accepted with users configured")
	}
	if _, err := connect(t, b.Addr(), "b", "dev1", "nope"); err == nil {
		t.Fatal("wrong password accepted")
	}
	if _, err := connect(t, b.Addr(), "c", "dev1", "pw1"); err != nil {
		t.Fatalf("right password refused: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]Config{
		"bad address":  {Address: "nope"},
		"c2 no pass":   {C2: &Credentials{Username: "c2"}},
		"c2 dup users": {C2: &Credentials{Username: "x", Password: "y"}, Users: map[string]string{"x": "z"}},
		"device user":  {Users: map[string]string{"00112233445566778899aabbccddeeff": "pw"}},
		"device c2":    {C2: &Credentials{Username: "00112233445566778899aabbccddeeff", Password: "y"}},
		"anon control": {AnonymousReadTopics: []string{"e4/00112233445566778899aabbccddeeff"}},
		"anon empty":   {AnonymousReadTopics: []string{""}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}

func TestPublishNotRunningAndRestart(t *testing.T) {
	auth := newAuthority()
	id := auth.device(1)
	b := startBroker(t, Config{Authority: auth})
	addr := b.Addr()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("e4/aa", []byte("x")); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("publish on a closed broker: %v, want ErrNotRunning", err)
	}
	// Restart on the same port.
	b2 := startBroker(t, Config{Address: addr, Authority: auth})
	if b2.Addr() != addr {
		t.Fatalf("restarted on %s, want %s", b2.Addr(), addr)
	}
	b3, err := New(Config{Address: addr, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b3.Start(context.Background()); err == nil {
		_ = b3.Close()
		t.Fatal("second broker bound a port already in use")
	}
	sub, err := connect(t, addr, clientID(id), user(id), auth.password(id))
	if err != nil {
		t.Fatal(err)
	}
	r := subscribe(t, sub, ControlTopic(id))
	if err := b2.Publish(ControlTopic(id), []byte("x")); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "message after restart", func() bool { return len(r.snapshot()) == 1 })
}

func TestStartStopsWithContext(t *testing.T) {
	b, err := New(Config{Address: "127.0.0.1:0", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if !b.Running() {
		t.Fatal("not running after Start")
	}
	cancel()
	testwait.For(t, "broker to stop on cancel", func() bool { return !b.Running() })
}

// emfileListener fails Accept with EMFILE while failing is set, as a
// process out of file descriptors does.
type emfileListener struct {
	net.Listener
	failing atomic.Bool
	fails   atomic.Int64
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.failing.Load() {
		l.fails.Add(1)
		// Not a synchronization: a real EMFILE costs a system call, this
		// fake nothing, and without the pause the broker's accept loop
		// (if it did not back off) would spin a core of a shared machine.
		time.Sleep(time.Millisecond)
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

func TestListenerSurvivesEMFILE(t *testing.T) {
	var el *emfileListener
	b := startBroker(t, Config{AllowAnonymous: true, WrapListener: func(ln net.Listener) net.Listener {
		el = &emfileListener{Listener: ln}
		el.failing.Store(true)
		return el
	}})
	testwait.For(t, "accept errors", func() bool { return el.fails.Load() >= 5 })
	el.failing.Store(false)
	if _, err := connect(t, b.Addr(), "after-emfile", "", ""); err != nil {
		t.Fatalf("connect after the EMFILE spell: %v", err)
	}
	if st := b.ListenerStats(); st.AcceptErrors < 5 || st.Accepted < 1 {
		t.Fatalf("stats %+v: want >= 5 accept errors and an accepted connection", st)
	}
}

func TestListenerMaxConns(t *testing.T) {
	b := startBroker(t, Config{MaxConns: 2, AllowAnonymous: true})
	if _, err := connect(t, b.Addr(), "c1", "", ""); err != nil {
		t.Fatal(err)
	}
	c2, err := connect(t, b.Addr(), "c2", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := connect(t, b.Addr(), "c3", "", ""); err == nil {
		t.Fatal("third connection accepted with MaxConns 2")
	}
	if b.ListenerStats().Refused == 0 {
		t.Fatal("no refusal counted")
	}
	// Freeing a slot lets a new client in.
	c2.Disconnect(0)
	testwait.For(t, "slot release", func() bool { return b.ListenerStats().Active < 2 })
	if _, err := connect(t, b.Addr(), "c4", "", ""); err != nil {
		t.Fatalf("connect after a slot was freed: %v", err)
	}
}

func TestDefaultMaxConns(t *testing.T) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Skip("no rlimit:", err)
	}
	n := DefaultMaxConns()
	if n < 16 || n > 10000 || (rl.Cur > 272 && uint64(n) > rl.Cur-256) {
		t.Fatalf("DefaultMaxConns() = %d with RLIMIT_NOFILE %d", n, rl.Cur)
	}
}

func ExampleBroker_Publish() {
	b, err := New(Config{Address: "127.0.0.1:0", Logger: quietLogger()})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := b.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	fmt.Println(b.Publish("e4/00112233445566778899aabbccddeeff", []byte("protected command")))
	// Output: <nil>
}
