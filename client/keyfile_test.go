package client

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/standard"
)

// ReadKeyFile reads the hex files e4c2 keygen writes (with or without the
// newline) and raw binary keys; errors name the file, never a key.
func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{0xab}, 32)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, p := range []string{
		write("hex", strings.Repeat("ab", 32)+"\n"),
		write("hexnonl", strings.Repeat("AB", 32)),
		write("raw", string(key)),
	} {
		got, err := ReadKeyFile(p)
		if err != nil || !bytes.Equal(got, key) {
			t.Fatalf("%s: %x, %v", filepath.Base(p), got, err)
		}
	}
	if _, err := ReadKeyFile(write("empty", "\n")); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty file: %v", err)
	}
	if _, err := ReadKeyFile(filepath.Join(dir, "missing")); !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("missing file: %v", err)
	}

	// A key file made like e4c2 keygen symmetric opens a device.
	k, err := ReadKeyFile(write("sk", strings.Repeat("ab", 32)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Suite: standard.New(), Mode: core.SymKey, Name: "dev", Key: k})
	if err != nil || !bytes.Equal(c.State().Key, key) {
		t.Fatalf("New from a key file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}
