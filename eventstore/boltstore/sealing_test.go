package boltstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/sealing"
	"github.com/e4c2/e4c2/eventstore/storetest"
)

type keyPayload struct {
	Topic string `json:"topic"`
	Key   []byte `json:"key"` // sealed
}

// TestNoKeyBytesInFile writes events carrying sealed known keys, closes the
// store and searches the raw file for the keys (raw, hex, base64): none may
// appear, while the sealed values (the positive control) must.
func TestNoKeyBytesInFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	masterBytes := make([]byte, 32)
	_, _ = rand.Read(masterBytes)
	mk := func(b []byte) *sealing.MasterKey {
		m, err := sealing.MasterKeyFromBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := sealing.OpenKeyring(ctx, s, mk(masterBytes))
	if err != nil {
		t.Fatal(err)
	}
	var keys, sealedVals [][]byte
	const typ = "topic.key_rotated.v1"
	for i := 0; i < 20; i++ {
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		keys = append(keys, k)
		stream := "topic-" + string(rune('a'+i%4))
		version := uint64(i/4 + 1)
		sealed, err := kr.Seal(k, sealing.SealAD(stream, version, typ))
		if err != nil {
			t.Fatal(err)
		}
		sealedVals = append(sealedVals, sealed)
		data, _ := json.Marshal(keyPayload{Topic: stream, Key: sealed})
		ev := storetest.Event(i)
		ev.Type, ev.Data = typ, data
		if _, err := s.Append(ctx, stream, int64(version-1), ev); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kr.RotateDEK(ctx); err != nil {
		t.Fatal(err)
	}
	kr.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	forms := func(b []byte) map[string][]byte {
		return map[string][]byte{
			"raw":       b,
			"hex":       []byte(hex.EncodeToString(b)),
			"HEX":       []byte(strings.ToUpper(hex.EncodeToString(b))),
			"base64":    []byte(base64.StdEncoding.EncodeToString(b)),
			"base64url": []byte(base64.RawURLEncoding.EncodeToString(b)),
			// Inner part of base64, whatever the alignment in a longer text.
			"base64mid": []byte(base64.RawStdEncoding.EncodeToString(b)[4:40]),
		}
	}
	for i, k := range append(keys, masterBytes) {
		for form, needle := range forms(k) {
			if bytes.Contains(file, needle) {
				t.Fatalf("key %d found in the store file as %s", i, form)
			}
		}
	}
	// Positive control: the search does find what is stored.
	for i, sv := range sealedVals {
		if !bytes.Contains(file, []byte(base64.StdEncoding.EncodeToString(sv))) {
			t.Fatalf("sealed value %d not found in the file: the search is broken", i)
		}
	}

	// Reopen: the keys come back through the keyring, bound to their records.
	s, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := sealing.OpenKeyring(ctx, s, mk(make([]byte, 32))); !errors.Is(err, sealing.ErrWrongMasterKey) {
		t.Fatalf("wrong master key at open: %v, want ErrWrongMasterKey", err)
	}
	kr, err = sealing.OpenKeyring(ctx, s, mk(masterBytes))
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	recs, err := s.ReadAll(ctx, 1, 100)
	if err != nil || len(recs) != len(keys) {
		t.Fatalf("read %d records (%v)", len(recs), err)
	}
	for i, r := range recs {
		var p keyPayload
		if err := json.Unmarshal(r.Data, &p); err != nil {
			t.Fatal(err)
		}
		got, err := kr.Open(p.Key, sealing.SealAD(r.Stream, r.Version, r.Type))
		if err != nil || !bytes.Equal(got, keys[i]) {
			t.Fatalf("record %d: unseal: %v", i, err)
		}
		if _, err := kr.Open(p.Key, sealing.SealAD(r.Stream, r.Version+1, r.Type)); !errors.Is(err, sealing.ErrUnseal) {
			t.Fatalf("record %d: sealed key opens under another version: %v", i, err)
		}
	}
}

// TestMasterRotationOnBolt rotates the master key of a bolt store: the new
// key opens after reopen, the old one fails, and sealed values still open.
func TestMasterRotationOnBolt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	mk := func(b []byte) *sealing.MasterKey {
		m, _ := sealing.MasterKeyFromBytes(b)
		return m
	}
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := sealing.OpenKeyring(ctx, s, mk(oldKey))
	if err != nil {
		t.Fatal(err)
	}
	ad := sealing.SealAD("c", 1, "client.created.v1")
	sealed, _ := kr.Seal([]byte("client key"), ad)
	ev := storetest.Event(0)
	ev.Data = sealed
	if _, err := s.Append(ctx, "c", eventstore.NoStream, ev); err != nil {
		t.Fatal(err)
	}
	before, _ := s.ReadAll(ctx, 1, 10)
	if err := kr.Rotate(ctx, mk(newKey)); err != nil {
		t.Fatal(err)
	}
	kr.Close()
	s.Close()

	s, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := sealing.OpenKeyring(ctx, s, mk(oldKey)); !errors.Is(err, sealing.ErrWrongMasterKey) {
		t.Fatalf("old master key after rotation: %v", err)
	}
	kr, err = sealing.OpenKeyring(ctx, s, mk(newKey))
	if err != nil {
		t.Fatalf("new master key after rotation: %v", err)
	}
	defer kr.Close()
	after, _ := s.ReadAll(ctx, 1, 10)
	if len(after) != 1 || !bytes.Equal(after[0].Data, before[0].Data) || after[0].PrevHash != before[0].PrevHash {
		t.Fatal("master rotation changed the log")
	}
	if got, err := kr.Open(after[0].Data, ad); err != nil || string(got) != "client key" {
		t.Fatalf("sealed value after rotation: %v", err)
	}
}
