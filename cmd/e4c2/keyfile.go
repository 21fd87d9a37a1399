package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Key files hold one key as lowercase hex and a newline: printable, easy
// to copy into a provisioning tool, and unambiguous. readKeyFile also
// accepts raw binary keys so that keys made by other tools work.

// readKeyFile returns the key bytes of a key file.
func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer clear(b)
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return nil, fmt.Errorf("key file %s is empty", path)
	}
	if k, err := hex.DecodeString(string(t)); err == nil {
		return k, nil
	}
	return bytes.Clone(b), nil
}

// writeKeyFile writes key as hex to path with mode perm. It refuses to
// replace an existing file unless force is set; the new file is written
// beside and renamed so a crash never leaves half a key.
func writeKeyFile(path string, key []byte, perm fs.FileMode, force bool) error {
	if !force {
		if _, err := os.Lstat(path); err == nil {
			return withHint(fmt.Errorf("%s already exists", path), "pass --force to overwrite it")
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	buf := make([]byte, hex.EncodedLen(len(key))+1)
	hex.Encode(buf, key)
	buf[len(buf)-1] = '\n'
	defer clear(buf)
	tmp := path + ".tmp"
	// A stale temp file (or a link planted there) is removed, not
	// followed: the key is written only into a file this call created.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write key file: %w", err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	// OpenFile applies the umask; set the mode we promise explicitly.
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write key file: %w", err)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write key file: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write key file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write key file: %w", err)
	}
	return nil
}
