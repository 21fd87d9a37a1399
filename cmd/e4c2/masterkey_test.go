package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/boltstore"
	"github.com/e4c2/e4c2/eventstore/sealing"
)

// rotationStore makes a data directory with a master key file, a keyring
// and one record of type typ; it returns the directory.
func rotationStore(t *testing.T, typ string) string {
	t.Helper()
	dir := t.TempDir()
	key := make([]byte, sealing.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "master.key"), []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(filepath.Join(dir, "e4c2.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := sealing.MasterKeyFromBytes(key)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := sealing.OpenKeyring(context.Background(), st, m)
	if err != nil {
		t.Fatal(err)
	}
	_ = kr.Close()
	if _, err := st.Append(context.Background(), "x-1", eventstore.NoStream,
		eventstore.EventData{ID: "00000000000000000000000000000001", Type: typ, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// opensWith reports whether the key file opens the store's keyring.
func opensWith(t *testing.T, dir, keyFile string) bool {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(dir, "e4c2.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := sealing.LoadMasterKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Destroy()
	kr, err := sealing.OpenKeyring(context.Background(), st, m)
	if err != nil {
		return false
	}
	_ = kr.Close()
	return true
}

// TestMasterKeyRotateFailureKeepsOldKey: a log the check cannot read (an
// event type no component decodes) fails the rotation before anything is
// written: the old key still opens the store and the error says so.
// Before, the keyring was rewritten first and the check failed after.
func TestMasterKeyRotateFailureKeepsOldKey(t *testing.T) {
	dir := rotationStore(t, "future.thing.v1")
	var out, errb bytes.Buffer
	newKey := filepath.Join(dir, "new.key")
	code := run([]string{"master-key", "rotate", "--data-dir", dir, "--new-key-file", newKey, "--generate"}, nil, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "nothing was changed: the old master key still opens the store") {
		t.Errorf("stderr does not say the old key works:\n%s", errb.String())
	}
	if !opensWith(t, dir, filepath.Join(dir, "master.key")) {
		t.Fatal("the old master key no longer opens the store after a failed rotation")
	}
}

// TestMasterKeyRotateFailureAfterCommit: a failure of the check after the
// commit says the rotation is committed (exit 1) and the new key works.
func TestMasterKeyRotateFailureAfterCommit(t *testing.T) {
	dir := rotationStore(t, "rule.deleted.v1")
	saved := checkCommitted
	t.Cleanup(func() { checkCommitted = saved })
	checkCommitted = func(context.Context, eventstore.Store, eventstore.KeyringStorage, []byte, *sealing.MasterKey) (int, error) {
		return 0, errors.New("injected read-back failure")
	}
	var out, errb bytes.Buffer
	newKey := filepath.Join(dir, "new.key")
	code := run([]string{"master-key", "rotate", "--data-dir", dir, "--new-key-file", newKey, "--generate"}, nil, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "e4c2: error: rotation committed: use the new key") {
		t.Errorf("stderr:\n%s", errb.String())
	}
	if !opensWith(t, dir, newKey) {
		t.Fatal("the new key does not open the store after a committed rotation")
	}
	if opensWith(t, dir, filepath.Join(dir, "master.key")) {
		t.Fatal("the old key still opens the store after a committed rotation")
	}
}
