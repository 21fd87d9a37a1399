package boltstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/storetest"
)

// killChildEnv names the store file of a kill-loop child process.
const killChildEnv = "E4C2_BOLTSTORE_KILL_CHILD"

// TestKillChild is the child of TestKillLoop (skipped when run by hand):
// it appends to the store from several goroutines and prints the id of
// every acknowledged event, until it is killed.
func TestKillChild(t *testing.T) {
	path := os.Getenv(killChildEnv)
	if path == "" {
		t.Skip("child process of TestKillLoop")
	}
	s, err := Open(path, nil)
	if err != nil {
		fmt.Printf("open-error %v\n", err)
		os.Exit(3)
	}
	out := make(chan string, 1024)
	for w := 0; w < 4; w++ {
		go func() {
			for i := 0; ; i++ {
				ev := storetest.Event(i)
				if _, err := s.Append(context.Background(), fmt.Sprintf("s-%d-%d", w, i%5), eventstore.Any, ev); err != nil {
					out <- "append-error " + err.Error()
					return
				}
				out <- "ack " + ev.ID
			}
		}()
	}
	fmt.Println("ready")
	for line := range out {
		fmt.Println(line)
	}
}

// TestKillLoop runs the real store in a child process that appends from
// several goroutines, kills it with SIGKILL at a random moment, reopens
// the file and checks that every acknowledged append is there and that
// the log verifies (full and quick). 20 cycles on one file.
func TestKillLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 loop skipped in -short mode")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "events.db")
	acked := map[string]bool{}
	ctx := context.Background()
	for cycle := 0; cycle < 20; cycle++ {
		cmd := exec.Command(exe, "-test.run=^TestKillChild$", "-test.v=false")
		cmd.Env = append(os.Environ(), killChildEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		ready := false
		// Kill after a varying number of acknowledgements.
		killAt := 50 + (cycle*137)%400
		n := 0
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "ready":
				ready = true
			case strings.HasPrefix(line, "ack "):
				acked[strings.TrimPrefix(line, "ack ")] = true
				n++
			case strings.HasPrefix(line, "open-error"), strings.HasPrefix(line, "append-error"):
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("cycle %d: child: %s", cycle, line)
			}
			if n >= killAt {
				break
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// Acknowledgements printed before the kill landed still count.
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "ack ") {
				acked[strings.TrimPrefix(line, "ack ")] = true
			}
		}
		_ = cmd.Wait()
		if !ready {
			t.Fatalf("cycle %d: the child never started", cycle)
		}

		s, err := Open(path, &Options{LockTimeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("cycle %d: reopen after kill: %v", cycle, err)
		}
		found := map[string]bool{}
		if err := s.Subscribe(ctx, 1, func(r eventstore.Record) error {
			found[r.ID] = true
			if r.Position == s.nextPos-1 {
				return errStop
			}
			return nil
		}); err != nil && !errors.Is(err, errStop) {
			t.Fatal(err)
		}
		for id := range acked {
			if !found[id] {
				t.Fatalf("cycle %d: acknowledged event %s is missing after kill -9", cycle, id)
			}
		}
		if _, err := eventstore.Verify(ctx, s, nil); err != nil {
			t.Fatalf("cycle %d: verify after kill -9: %v", cycle, err)
		}
		rep, err := s.QuickVerify(ctx)
		if err != nil {
			t.Fatalf("cycle %d: quick verify after kill -9: %v", cycle, err)
		}
		if err := s.MarkVerified(ctx, rep.LastPosition); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d acknowledged events over 20 kills", len(acked))
}

var errStop = errors.New("stop")
