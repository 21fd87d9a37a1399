package main

import (
	"bytes"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyImmutableCopy: e4c2 verify works on a copy that cannot be
// written (file 0444 in a 0555 directory, on a file system mounted
// read-only, since root ignores file modes) and changes nothing.
func TestVerifyImmutableCopy(t *testing.T) {
	src := rotationStore(t, "rule.deleted.v1")
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s): immutable copy not tested", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	for _, name := range []string{"e4c2.db", "master.key"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o444)
		if name == "master.key" {
			mode = 0o400
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot remount read-only: %v: %s", err, out)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "e4c2.db"))
	before := sha256.Sum256(b)
	var out, errb bytes.Buffer
	if code := run([]string{"verify", "--data-dir", dir}, nil, &out, &errb); code != 0 {
		t.Fatalf("verify of an immutable copy: exit %d\n%s", code, errb.String())
	}
	if !strings.HasPrefix(out.String(), "ok: 1 events in 1 streams") {
		t.Fatalf("verify: %s", out.String())
	}
	b, _ = os.ReadFile(filepath.Join(dir, "e4c2.db"))
	if sha256.Sum256(b) != before {
		t.Fatal("verify changed the file")
	}
}
