package main

import (
	"os"
	"path/filepath"
	"testing"
)

// A symlink planted at the temporary name must not be followed: the key goes
// into a file writeKeyFile created, and the link's target is untouched.
func TestWriteKeyFileDoesNotFollowTempLink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "k.key")
	if err := os.Symlink(victim, path+".tmp"); err != nil {
		t.Fatal(err)
	}
	if err := writeKeyFile(path, []byte{1, 2, 3}, 0o600, false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep me" {
		t.Fatalf("the link target was overwritten: %q", b)
	}
	if b, _ := os.ReadFile(path); string(b) != "010203\n" {
		t.Fatalf("key file = %q", b)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSymlink != 0 {
		t.Fatalf("key file mode %v, %v", fi.Mode(), err)
	}
}
