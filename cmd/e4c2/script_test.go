package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// The CLI tests are scripts (testdata/script/*.txtar) that run the real
// e4c2 binary: testscript re-executes this test binary as "e4c2", so every
// command goes through main's run, flag parsing and error printing. The
// server is the real `e4c2 serve` (embedded store, embedded MQTT broker,
// delivery worker, HTTP API), started in the background by startserver.

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"e4c2": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(env *testscript.Env) error {
			// No inherited configuration may leak into the scripts.
			for i, kv := range env.Vars {
				if strings.HasPrefix(kv, "E4C2_") {
					env.Vars[i] = "IGNORED_" + kv
				}
			}
			// Under -race every process sleeps 1 s at exit by default
			// (atexit_sleep_ms); the scripts run a hundred of them.
			env.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"startserver": cmdStartServer,
			"stopserver":  cmdStopServer,
			"waitfile":    cmdWaitFile,
			"perm":        cmdPerm,
			"sleep":       cmdSleep,
			"replace":     cmdReplace,
			"until":       cmdUntil,
		},
	})
}

// serverProc is the e4c2 serve started by a script.
type serverProc struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	serversMu sync.Mutex
	servers   = map[*testscript.TestScript]*serverProc{}
)

var servingLine = regexp.MustCompile(`serving the API on (http://\S+) and MQTT on (\S+)`)

// cmdStartServer runs `e4c2 serve ARGS...` in the background with
// ephemeral ports (ARGS may fix them), waits until it serves, and sets
// E4C2_SERVER, MQTT (the broker URL), HTTPADDR and MQTTADDR (host:port) and, unless the first argument is -restart, E4C2_TOKEN to the
// admin token it printed once. The server's output goes to
// $WORK/serve.stdout and $WORK/serve.stderr (appended across restarts).
func cmdStartServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! startserver")
	}
	restart := len(args) > 0 && args[0] == "-restart"
	if restart {
		args = args[1:]
	}
	serversMu.Lock()
	if servers[ts] != nil {
		serversMu.Unlock()
		ts.Fatalf("a server is already running")
	}
	serversMu.Unlock()
	bin, err := exec.LookPath("e4c2")
	ts.Check(err)
	full := append([]string{"serve", "--http-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0", "--log-level", "warn"}, args...)
	cmd := exec.Command(bin, full...)
	cmd.Dir = ts.Getenv("WORK")
	cmd.Env = scriptEnv(ts)
	stdout, err := cmd.StdoutPipe()
	ts.Check(err)
	stderr, err := cmd.StderrPipe()
	ts.Check(err)
	outLog, err := os.OpenFile(ts.MkAbs("serve.stdout"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	ts.Check(err)
	errLog, err := os.OpenFile(ts.MkAbs("serve.stderr"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	ts.Check(err)
	ts.Check(cmd.Start())
	p := &serverProc{cmd: cmd, done: make(chan error, 1)}

	tokenc := make(chan string, 1)
	addrc := make(chan [2]string, 1)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		scanLines(stdout, outLog, func(prev, line string) {
			if strings.HasPrefix(prev, "admin API token") {
				tokenc <- strings.TrimSpace(line)
			}
		})
	}()
	go func() {
		defer wg.Done()
		scanLines(stderr, errLog, func(_, line string) {
			if m := servingLine.FindStringSubmatch(line); m != nil {
				select {
				case addrc <- [2]string{m[1], m[2]}:
				default:
				}
			}
		})
	}()
	go func() {
		wg.Wait() // read everything before Wait closes the pipes
		p.done <- cmd.Wait()
		outLog.Close()
		errLog.Close()
	}()
	serversMu.Lock()
	servers[ts] = p
	serversMu.Unlock()
	ts.Defer(func() { stopServer(ts, false) })

	select {
	case a := <-addrc:
		ts.Setenv("E4C2_SERVER", a[0])
		ts.Setenv("MQTT", "tcp://"+a[1])
		// The bound addresses, to restart a server on the same ports.
		ts.Setenv("HTTPADDR", strings.TrimPrefix(a[0], "http://"))
		ts.Setenv("MQTTADDR", a[1])
	case err := <-p.done:
		serversMu.Lock()
		delete(servers, ts)
		serversMu.Unlock()
		b, _ := os.ReadFile(ts.MkAbs("serve.stderr"))
		ts.Fatalf("e4c2 serve exited before serving (%v):\n%s", err, b)
	case <-time.After(30 * time.Second):
		ts.Fatalf("e4c2 serve did not start within 30s")
	}
	if restart {
		return
	}
	// The token is written to stdout before the serving line goes to
	// stderr, so it is already in the pipe.
	select {
	case tok := <-tokenc:
		ts.Setenv("E4C2_TOKEN", tok)
	case <-time.After(5 * time.Second):
		ts.Fatalf("e4c2 serve printed no admin token (use startserver -restart on an existing data dir)")
	}
}

// scanLines copies r to log line by line and calls fn with each line and
// the one before.
func scanLines(r io.Reader, log io.Writer, fn func(prev, line string)) {
	sc := bufio.NewScanner(r)
	prev := ""
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(log, line)
		fn(prev, line)
		prev = line
	}
	_, _ = io.Copy(log, r)
}

// scriptEnv is the environment of the script for a child process.
func scriptEnv(ts *testscript.TestScript) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "E4C2_") {
			env = append(env, kv)
		}
	}
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "WORK", "GORACE"} {
		env = append(env, k+"="+ts.Getenv(k))
	}
	return env
}

// cmdStopServer sends SIGINT to the server and checks it shut down cleanly.
func cmdStopServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! stopserver")
	}
	stopServer(ts, true)
}

func stopServer(ts *testscript.TestScript, strict bool) {
	serversMu.Lock()
	p := servers[ts]
	delete(servers, ts)
	serversMu.Unlock()
	if p == nil {
		if strict {
			ts.Fatalf("no server running")
		}
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-p.done:
		if strict && err != nil {
			b, _ := os.ReadFile(ts.MkAbs("serve.stderr"))
			ts.Fatalf("e4c2 serve did not exit cleanly: %v\n%s", err, b)
		}
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		if strict {
			ts.Fatalf("e4c2 serve did not stop within 20s of SIGINT")
		}
	}
}

// cmdWaitFile waits (default 20s) until a file exists.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: waitfile FILE [TIMEOUT]")
	}
	d := 20 * time.Second
	if len(args) == 2 {
		var err error
		d, err = time.ParseDuration(args[1])
		ts.Check(err)
	}
	deadline := time.Now().Add(d)
	for {
		if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s did not appear within %s", args[0], d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cmdPerm checks a file's permission bits: perm 0600 FILE.
func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: perm MODE FILE")
	}
	want, err := strconv.ParseUint(args[0], 8, 32)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[1]))
	ts.Check(err)
	got := uint64(fi.Mode().Perm())
	if (got == want) == neg {
		ts.Fatalf("%s has mode %#o (want %s%#o)", args[1], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// cmdSleep pauses the script: sleep 500ms.
func cmdSleep(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sleep DURATION")
	}
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	time.Sleep(d)
}

// cmdReplace rewrites a file in place, replacing every occurrence of OLD by
// NEW (same length, so a store file keeps its layout): replace FILE OLD NEW.
// It fails when OLD does not occur, so a tamper test cannot pass vacuously.
func cmdReplace(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 || len(args[1]) != len(args[2]) {
		ts.Fatalf("usage: replace FILE OLD NEW (same length; FILE may be a pattern: every match)")
	}
	paths, err := filepath.Glob(ts.MkAbs(args[0]))
	ts.Check(err)
	if len(paths) == 0 {
		ts.Fatalf("no file %s", args[0])
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		ts.Check(err)
		if !strings.Contains(string(b), args[1]) {
			ts.Fatalf("%s does not contain %q", p, args[1])
		}
		ts.Check(os.WriteFile(p, []byte(strings.ReplaceAll(string(b), args[1], args[2])), 0o600))
	}
}

// cmdUntil runs a command again until its standard output matches PATTERN,
// for effects that happen after the command that caused them returned (a
// rule firing on an event): until PATTERN CMD [ARGS...]. It gives up after
// 30 s; the last output stays for the next assertions.
func cmdUntil(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: until PATTERN CMD [ARGS...]")
	}
	re, err := regexp.Compile(args[0])
	ts.Check(err)
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := ts.Exec(args[1], args[2:]...)
		if err == nil && re.MatchString(ts.ReadFile("stdout")) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s never printed %q within 30s (last error: %v)", strings.Join(args[1:], " "), args[0], err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
