package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// damagedDataDir runs a server on a new data directory long enough to
// write a few events (through the offline master-key store set up by
// rotationStore) and returns the directory and its store file.
func damagedDataDir(t *testing.T) (dir, db string) {
	t.Helper()
	dir = rotationStore(t, "rule.deleted.v1")
	return dir, filepath.Join(dir, "e4c2.db")
}

// checkOneLine asserts the operator sees one error line and one hint,
// exit status 1, and no Go trace.
func checkOneLine(t *testing.T, code int, stderr, want string) {
	t.Helper()
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	if strings.Contains(stderr, "goroutine") || strings.Contains(stderr, "panic") || strings.Contains(stderr, "SIGBUS") {
		t.Fatalf("a trace instead of one line:\n%s", stderr)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if strings.HasPrefix(l, "e4c2: ") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "e4c2: error: "+want) || !strings.HasSuffix(lines[0], "; restore from backup") ||
		!strings.HasPrefix(lines[1], "e4c2: hint: ") {
		t.Fatalf("stderr is not one error line (%q ... ; restore from backup) and a hint:\n%s", want, stderr)
	}
}

// TestDamagedStoreOneLine: a truncated file and a zeroed page make verify,
// replay and serve print one line and exit 1, never a panic trace or a
// SIGBUS.
func TestDamagedStoreOneLine(t *testing.T) {
	serveArgs := func(dir string) []string {
		return []string{"serve", "--data-dir", dir, "--http-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0"}
	}
	t.Run("truncated", func(t *testing.T) {
		dir, db := damagedDataDir(t)
		b, err := os.ReadFile(db)
		if err != nil {
			t.Fatal(err)
		}
		// The high-water mark of the newest meta page: truncate inside
		// the pages in use.
		pgid := max(binary.LittleEndian.Uint64(b[16+40:]), binary.LittleEndian.Uint64(b[4096+16+40:]))
		if err := os.WriteFile(db, b[:(pgid-1)*4096], 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"verify", "--data-dir", dir}, {"replay", "--data-dir", dir}, serveArgs(dir)} {
			var out, errb bytes.Buffer
			code := run(args, nil, &out, &errb)
			checkOneLine(t, code, errb.String(), "store damaged: "+db+": the file is truncated")
		}
	})
	t.Run("zeroed page", func(t *testing.T) {
		dir, db := damagedDataDir(t)
		// The store was closed cleanly: its marker would let a start skip
		// the walk of the pages if the file were unchanged. It is rewritten
		// in place below (same file, same size).
		if _, err := os.Stat(db + ".clean"); err != nil {
			t.Fatalf("no clean-close marker: %v", err)
		}
		b, err := os.ReadFile(db)
		if err != nil {
			t.Fatal(err)
		}
		// Zero the root page of the newest meta page (txid at meta
		// offset 48, root bucket page at 16): it is always in use.
		meta := 16
		if binary.LittleEndian.Uint64(b[4096+16+48:]) > binary.LittleEndian.Uint64(b[16+48:]) {
			meta = 4096 + 16
		}
		root := binary.LittleEndian.Uint64(b[meta+16:])
		clear(b[root*4096 : (root+1)*4096])
		if err := os.WriteFile(db, b, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"verify", "--data-dir", dir}, serveArgs(dir)} {
			var out, errb bytes.Buffer
			code := run(args, nil, &out, &errb)
			checkOneLine(t, code, errb.String(), "store damaged: "+db+": ")
		}
	})
}
