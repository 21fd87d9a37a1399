package boltstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/storetest"
)

// actorEvent is an event whose actor is a unique marker, so a test can
// find the record in the raw file and flip one of its bytes.
func actorEvent(i int, actor string) eventstore.EventData {
	ev := storetest.Event(i)
	ev.Meta.Actor = actor
	return ev
}

// flipInFile replaces every occurrence of old in the file by repl (of
// the same length), as a bit flip on disk would: no page checksum in bolt
// notices it.
func flipInFile(t *testing.T, path, old, repl string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Copy-on-write leaves older copies of a page in free pages: flip
	// them all (only the live one matters).
	if n := bytes.Count(b, []byte(old)); n == 0 {
		t.Fatalf("%q is not in the file", old)
	}
	if err := os.WriteFile(path, bytes.ReplaceAll(b, []byte(old), []byte(repl)), 0o600); err != nil {
		t.Fatal(err)
	}
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// crashedStore appends events to three streams (the newest record of
// "s-1" carries the actor newest-marker) and stops like a killed process:
// nothing flushed after the last commit.
func crashedStore(t *testing.T) (path string, newestPos uint64) {
	t.Helper()
	ctx := context.Background()
	path = filepath.Join(t.TempDir(), "events.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		if _, err := s.Append(ctx, fmt.Sprintf("s-%d", i%3), eventstore.Any, actorEvent(i, "cli:someone")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Append(ctx, "s-1", eventstore.Any, actorEvent(99, "cli:newest-marker")); err != nil {
		t.Fatal(err)
	}
	for i := 30; i < 35; i++ { // newer records of other streams
		if _, err := s.Append(ctx, "s-0", eventstore.Any, actorEvent(i, "cli:someone")); err != nil {
			t.Fatal(err)
		}
	}
	crash(t, s)
	return path, 31
}

// TestFlippedNewestRecordAfterCrash: after a crash, a byte flipped in the
// newest record of a stream must fail verification (its head was
// committed with it), and verifying must not write the file. Before, Open
// rebuilt the head from the damaged record and wrote it into the file.
func TestFlippedNewestRecordAfterCrash(t *testing.T) {
	ctx := context.Background()
	path, pos := crashedStore(t)
	flipInFile(t, path, "cli:newest-marker", "cli:newest-markes")
	before := fileSum(t, path)

	s, err := Open(path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = eventstore.Verify(ctx, s, nil)
	var ce *eventstore.ChainError
	if !errors.As(err, &ce) || ce.Position != pos || ce.Stream != "s-1" {
		t.Fatalf("verify after a flipped newest record: %v, want a chain error at position %d", err, pos)
	}
	if _, err := s.QuickVerify(ctx); !errors.As(err, &ce) || ce.Position != pos {
		t.Fatalf("quick verify: %v, want a chain error at position %d", err, pos)
	}
	if _, err := s.Append(ctx, "s-1", eventstore.Any, storetest.Event(0)); !errors.Is(err, eventstore.ErrReadOnly) {
		t.Fatalf("append on a read-only store: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fileSum(t, path) != before {
		t.Fatal("a read-only open and verify changed the file")
	}
	// Opened for writing too, the evidence stays: the head is not
	// rebuilt from the damaged record.
	s, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := eventstore.Verify(ctx, s, nil); !errors.As(err, &ce) || ce.Position != pos {
		t.Fatalf("verify after a read-write open: %v, want a chain error at position %d", err, pos)
	}
}

// TestQuickVerify: the incremental check at start catches an altered
// record in the tail since the last verified point and an altered newest
// record of any stream; an older record before the verified point is left
// to the full Verify.
func TestQuickVerify(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		actor := "cli:someone"
		switch i {
		case 3:
			actor = "cli:old-marker"
		case 14:
			actor = "cli:tail-marker"
		}
		if i == 10 {
			rep, err := s.QuickVerify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Records != 10 || rep.LastPosition != 10 {
				t.Fatalf("quick verify of a fresh store: %+v", rep)
			}
			if err := s.MarkVerified(ctx, rep.LastPosition); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Append(ctx, fmt.Sprintf("s-%d", i%2), eventstore.Any, actorEvent(i, actor)); err != nil {
			t.Fatal(err)
		}
	}
	if rep, err := s.QuickVerify(ctx); err != nil || rep.Records != 10 {
		t.Fatalf("quick verify of the tail: %+v, %v", rep, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	flipInFile(t, path, "cli:old-marker", "cli:old-markes")
	s, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.QuickVerify(ctx); err != nil {
		t.Fatalf("quick verify looks before the verified point: %v", err)
	}
	var ce *eventstore.ChainError
	if _, err := eventstore.Verify(ctx, s, nil); !errors.As(err, &ce) || ce.Position != 4 {
		t.Fatalf("full verify: %v, want position 4", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	flipInFile(t, path, "cli:tail-marker", "cli:tail-markes")
	s, err = Open(path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.QuickVerify(ctx); !errors.As(err, &ce) || ce.Position != 15 {
		t.Fatalf("quick verify of an altered tail record: %v, want position 15", err)
	}
	if err := s.MarkVerified(ctx, 20); !errors.Is(err, eventstore.ErrReadOnly) {
		t.Fatalf("mark verified on a read-only store: %v", err)
	}
}

// closedStoreFile makes a store of a few hundred records spread over many
// pages and closes it.
func closedStoreFile(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		ev := storetest.Event(i)
		ev.Data = bytes.Repeat([]byte{'x'}, 200)
		if _, err := s.Append(ctx, fmt.Sprintf("s-%d", i%7), eventstore.Any, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// readEverything opens the store, runs the file check and a full verify;
// it returns the first error. A panic fails the test (the issue: a Go
// panic trace instead of one line).
func readEverything(path string, readOnly bool) (err error) {
	s, err := Open(path, &Options{ReadOnly: readOnly})
	if err != nil {
		return err
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.CheckFile(ctx); err != nil {
		return err
	}
	_, err = eventstore.Verify(ctx, s, nil)
	return err
}

// TestDamagedFile: a zeroed page or a truncation inside the used area of
// the file returns an error wrapping ErrDamaged from Open or the check,
// never a panic or SIGBUS.
func TestDamagedFile(t *testing.T) {
	if err := readEverything(closedStoreFile(t), false); err != nil {
		t.Fatalf("intact file: %v", err)
	}
	const page = 4096
	// usedPages is the high-water mark of the newest meta page: the
	// file grows in large steps, its tail is unused.
	usedPages := func(t *testing.T, b []byte) int64 {
		m0, m1 := parseMeta(b[:page]), parseMeta(b[page:2*page])
		if m1.txid > m0.txid {
			m0 = m1
		}
		return int64(m0.pgid)
	}
	t.Run("zeroed page", func(t *testing.T) {
		path := closedStoreFile(t)
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		used := usedPages(t, orig)
		orig = orig[:used*page] // the unused tail is not needed
		found := 0
		for p := int64(2); p < used; p++ {
			if bytes.Count(orig[p*page:(p+1)*page], []byte{0}) == page {
				continue // a free page: nothing to destroy
			}
			b := bytes.Clone(orig)
			dam := filepath.Join(t.TempDir(), "damaged.db")
			copy(b[p*page:(p+1)*page], make([]byte, page))
			if err := os.WriteFile(dam, b, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, ro := range []bool{true, false} {
				err = readEverything(dam, ro)
				if err == nil {
					continue // a page no longer in use (freed by a later commit)
				}
				found++
				if !errors.Is(err, eventstore.ErrDamaged) {
					t.Errorf("zeroed page %d (read-only %v): %v, want ErrDamaged", p, ro, err)
				}
			}
		}
		if found == 0 {
			t.Fatal("no zeroed page was noticed: the test damages nothing in use")
		}
	})
	t.Run("truncated", func(t *testing.T) {
		path := closedStoreFile(t)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		used := usedPages(t, b) * page
		for _, size := range []int64{used / 2, 3 * page, used - page} {
			dam := filepath.Join(t.TempDir(), "truncated.db")
			if err := os.WriteFile(dam, b[:size], 0o600); err != nil {
				t.Fatal(err)
			}
			for _, ro := range []bool{true, false} {
				_, err := Open(dam, &Options{ReadOnly: ro})
				if !errors.Is(err, eventstore.ErrDamaged) || !strings.Contains(err.Error(), "truncated") {
					t.Errorf("truncated to %d bytes (read-only %v): %v, want ErrDamaged (truncated)", size, ro, err)
				}
			}
		}
	})
}

// TestLostTransactionDetected: when the newest meta page is destroyed,
// bbolt falls back to the previous transaction and an acknowledged append
// disappears; the sidecar position makes Open say so instead of serving
// (and appending after) a silently shorter log.
func TestLostTransactionDetected(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := s.Append(ctx, "s", eventstore.Any, storetest.Event(i)); err != nil {
			t.Fatal(err)
		}
	}
	crash(t, s)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m0, m1 := parseMeta(b[:4096]), parseMeta(b[4096:8192])
	newest := int64(0)
	if m1.txid > m0.txid {
		newest = 4096
	}
	b[newest+metaOffset+20] ^= 0xff // inside the root bucket field: checksum fails
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, &Options{ReadOnly: true})
	if !errors.Is(err, eventstore.ErrDamaged) || !strings.Contains(err.Error(), "position 5 was acknowledged") {
		t.Fatalf("open after a meta-page fallback: %v, want ErrDamaged naming position 5", err)
	}
}

// mountTmpfs mounts a small tmpfs at a new directory, or skips the test
// where mounting is impossible (not root, no mount namespace rights).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s): disk-full and read-only file system cases not tested", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestVerifyOnReadOnlyFileSystem: a read-only open and a full verify work
// on a store whose file system is mounted read-only (an immutable copy;
// as root, file modes do not stop writes, a read-only mount does).
func TestVerifyOnReadOnlyFileSystem(t *testing.T) {
	ctx := context.Background()
	dir := mountTmpfs(t, "8m")
	path := filepath.Join(dir, "events.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if _, err := s.Append(ctx, fmt.Sprintf("s-%d", i%4), eventstore.Any, storetest.Event(i)); err != nil {
			t.Fatal(err)
		}
	}
	crash(t, s) // an unflushed index tail too
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot remount read-only: %v: %s", err, out)
	}
	if _, err := Open(path, nil); err == nil {
		t.Fatal("a read-write open of a file on a read-only mount succeeded")
	}
	s, err = Open(path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open on a read-only file system: %v", err)
	}
	defer s.Close()
	if err := s.CheckFile(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := eventstore.Verify(ctx, s, nil); err != nil || rep.Records != 50 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	if err := s.Health(); !errors.Is(err, eventstore.ErrReadOnly) {
		t.Fatalf("health of a read-only store: %v", err)
	}
}

// TestDiskFull: on a full file system an append fails with ErrNoSpace and
// writes nothing, Health reports it, Close and a reopen need no space, a
// read-only verify passes, and appends work again once space is freed.
func TestDiskFull(t *testing.T) {
	ctx := context.Background()
	dir := mountTmpfs(t, "2m")
	path := filepath.Join(dir, "events.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Leave little room: a filler file takes most of the file system.
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 1<<20+512<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	var acked []eventstore.EventData
	var appendErr error
	for i := 0; i < 10000 && appendErr == nil; i++ {
		ev := storetest.Event(i)
		ev.Data = bytes.Repeat([]byte{'d'}, 1000)
		if _, appendErr = s.Append(ctx, fmt.Sprintf("s-%d", i%5), eventstore.Any, ev); appendErr == nil {
			acked = append(acked, ev)
		}
	}
	if !errors.Is(appendErr, eventstore.ErrNoSpace) {
		t.Fatalf("append on a full disk: %v, want ErrNoSpace", appendErr)
	}
	if err := s.Health(); !errors.Is(err, eventstore.ErrNoSpace) {
		t.Fatalf("health on a full disk: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close on a full disk: %v", err)
	}
	for _, ro := range []bool{true, false} {
		s, err = Open(path, &Options{ReadOnly: ro})
		if err != nil {
			t.Fatalf("reopen (read-only %v) on a full disk: %v", ro, err)
		}
		rep, err := eventstore.Verify(ctx, s, nil)
		if err != nil || rep.Records != uint64(len(acked)) {
			t.Fatalf("verify on a full disk: %+v, %v (acknowledged %d)", rep, err, len(acked))
		}
		if ro {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := s.Health(); err != nil {
		t.Fatalf("health once space is freed: %v", err)
	}
	if _, err := s.Append(ctx, "s-0", eventstore.Any, storetest.Event(0)); err != nil {
		t.Fatalf("append after freeing space: %v", err)
	}
	if err := s.Health(); err != nil {
		t.Fatalf("health after freeing space: %v", err)
	}
	if _, err := eventstore.Verify(ctx, s, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestFormat1Upgrade: a file written by format 1 after a crash (heads of
// the unflushed tail missing, format byte 1) opens read-only as before and
// is upgraded by a read-write open: its heads are written and it verifies.
func TestFormat1Upgrade(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := s.Append(ctx, fmt.Sprintf("s-%d", i%3), eventstore.Any, storetest.Event(i)); err != nil {
			t.Fatal(err)
		}
	}
	crash(t, s)
	// Make it a format-1 file: no heads for the unflushed tail.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketHeads); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketHeads); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyFormat, []byte{legacyFileFormat})
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := eventstore.Verify(ctx, s, nil); err != nil || rep.Records != 20 {
		t.Fatalf("read-only verify of a format-1 file: %+v, %v", rep, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyFormat); len(v) != 1 || v[0] != fileFormat {
			t.Errorf("format after a read-write open: %v", v)
		}
		if n := tx.Bucket(bucketHeads).Stats().KeyN; n != 3 {
			t.Errorf("%d heads written by the upgrade, want 3", n)
		}
		return nil
	})
	_ = db.Close()
	s, err = Open(path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := eventstore.Verify(ctx, s, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.QuickVerify(ctx); err != nil {
		t.Fatal(err)
	}
}
