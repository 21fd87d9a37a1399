package boltstore

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/storetest"
)

// reopen opens path read-write and closes it again, returning whether the
// open walked the pages.
func reopen(t *testing.T, path string) (walked bool) {
	t.Helper()
	s, err := Open(path, nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	walked = s.walked
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return walked
}

func writeAt(t *testing.T, path string, b []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCleanCloseSkipsWalk: a store reopened as its clean Close left it is
// not walked; after a crash (no marker), a replaced file, a changed meta
// page or a marker of another file, it is.
func TestCleanCloseSkipsWalk(t *testing.T) {
	path := closedStoreFile(t)
	if _, err := os.Stat(cleanPath(path)); err != nil {
		t.Fatalf("no clean-close marker after Close: %v", err)
	}
	// A write in the same tick of the file system's clock as the Close
	// must still change the time stamp: Close set it into the past.
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if age := time.Since(fi.ModTime()); age < 500*time.Millisecond {
		t.Fatalf("the closed file's time stamp is %v old: a write in the same clock tick would not change it", age)
	}
	if reopen(t, path) {
		t.Fatal("a cleanly closed, unchanged store was walked")
	}
	if reopen(t, path) {
		t.Fatal("the second clean reopen was walked")
	}

	t.Run("crash", func(t *testing.T) {
		if err := os.Remove(cleanPath(path)); err != nil {
			t.Fatal(err)
		}
		if !reopen(t, path) {
			t.Fatal("a store without a marker (a crash) was not walked")
		}
	})
	t.Run("marker consumed", func(t *testing.T) {
		s, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, statErr := os.Stat(cleanPath(path))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if !errors.Is(statErr, os.ErrNotExist) {
			t.Fatalf("the marker is still there while the store is open: %v", statErr)
		}
	})
	t.Run("replaced file", func(t *testing.T) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		tmp := path + ".copy"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		if !reopen(t, path) {
			t.Fatal("a store file replaced by a copy was not walked")
		}
	})
	t.Run("older meta page rewritten", func(t *testing.T) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m0, m1 := parseMeta(b[:4096]), parseMeta(b[4096:8192])
		older := int64(0)
		if m0.txid > m1.txid {
			older = 4096
		}
		// The older meta page destroyed: bbolt still opens the newer one,
		// but the file is not what the marker describes.
		writeAt(t, path, make([]byte, 4096), older)
		if !reopen(t, path) {
			t.Fatal("a store whose meta page changed was not walked")
		}
	})
	t.Run("other file's marker", func(t *testing.T) {
		other := closedStoreFile(t)
		b, err := os.ReadFile(cleanPath(other))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cleanPath(path), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if !reopen(t, path) {
			t.Fatal("a store with another file's marker was not walked")
		}
	})
}

// TestCleanCloseThenDamaged: every page of a cleanly closed store is
// zeroed in place in turn, right after the Close (within the file
// system's clock tick): Open must find exactly what a walk of the pages
// finds, the fast path must not hide a damaged page.
func TestCleanCloseThenDamaged(t *testing.T) {
	const page = 4096
	path := closedStoreFile(t)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m0, m1 := parseMeta(orig[:page]), parseMeta(orig[page:2*page])
	if m1.txid > m0.txid {
		m0 = m1
	}
	if m0.freelist == noFreelist {
		t.Fatal("the store wrote no freelist")
	}
	found := 0
	for p := int64(2); p < int64(m0.pgid); p++ {
		reopen(t, path) // the restored store, walked: leaves a marker
		if reopen(t, path) {
			t.Fatalf("page %d: the restored, cleanly closed store was walked", p)
		}
		writeAt(t, path, make([]byte, page), p*page)
		walkErr := checkPages(path)
		s, err := Open(path, nil)
		if err == nil {
			s.Close()
		}
		switch {
		case walkErr != nil && !errors.Is(err, eventstore.ErrDamaged):
			t.Errorf("zeroed page %d after a clean close: Open %v, the walk finds %v", p, err, walkErr)
		case walkErr != nil:
			found++
		}
		writeAt(t, path, orig[p*page:(p+1)*page], p*page)
		_ = os.Remove(cleanPath(path))
	}
	if found == 0 {
		t.Fatal("no zeroed page was found: the test damages nothing in use")
	}
}

// TestFreelistChecked: a freelist that lists a page in use (bbolt would
// hand it out and overwrite live records) is damage.
func TestFreelistChecked(t *testing.T) {
	const page = 4096
	path := closedStoreFile(t)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m0, m1 := parseMeta(b[:page]), parseMeta(b[page:2*page])
	if m1.txid > m0.txid {
		m0 = m1
	}
	root := binary.LittleEndian.Uint64(b[(m0.txid%2)*page+metaOffset+16:])
	fl := b[m0.freelist*page : (m0.freelist+1)*page]
	// One more free id: the root page, which is in use.
	n := binary.LittleEndian.Uint16(fl[10:])
	binary.LittleEndian.PutUint64(fl[pageHeaderSize+8*int(n):], root)
	binary.LittleEndian.PutUint16(fl[10:], n+1)
	dam := filepath.Join(t.TempDir(), "freelist.db")
	if err := os.WriteFile(dam, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dam, nil); !errors.Is(err, eventstore.ErrDamaged) {
		t.Fatalf("a freelist listing the root page: %v, want ErrDamaged", err)
	}
}

// newestMeta reads the newest valid meta page of the file at path.
func newestMeta(t *testing.T, path string) metaPage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m0, m1 := parseMeta(b[:4096]), parseMeta(b[4096:8192])
	if m1.txid > m0.txid {
		return m1
	}
	return m0
}

// TestFreelistAtClose: commits write no freelist (it would cost every
// append tens of pages on a large file); Close writes it, so the next Open
// reads it. A store that was not closed (a crash, or a file of an older
// version) has none: Open rebuilds it and walks the pages, and its Close
// writes it. On a full disk Close still succeeds (without a freelist, so
// the next Open walks).
func TestFreelistAtClose(t *testing.T) {
	ctx := context.Background()
	crashed := func(t *testing.T, dir string) string {
		path := filepath.Join(dir, "events.db")
		s, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 50; i++ {
			if _, err := s.Append(ctx, "s", eventstore.Any, storetest.Event(i)); err != nil {
				t.Fatal(err)
			}
		}
		crash(t, s)
		if m := newestMeta(t, path); m.freelist != noFreelist {
			t.Fatalf("a commit wrote a freelist (page %d)", m.freelist)
		}
		return path
	}
	t.Run("crash then clean close", func(t *testing.T) {
		path := crashed(t, t.TempDir())
		if !reopen(t, path) {
			t.Fatal("a crashed store was not walked")
		}
		if m := newestMeta(t, path); m.freelist == noFreelist {
			t.Fatal("Close wrote no freelist")
		}
		if reopen(t, path) {
			t.Fatal("the cleanly closed store was walked")
		}
	})
	t.Run("disk full", func(t *testing.T) {
		dir := mountTmpfs(t, "2m")
		path := crashed(t, dir)
		f, err := os.Create(filepath.Join(dir, "filler"))
		if err != nil {
			t.Fatal(err)
		}
		chunk := make([]byte, 4096)
		for {
			if _, err := f.Write(chunk); err != nil {
				break
			}
		}
		f.Close()
		s, err := Open(path, nil)
		if err != nil {
			t.Fatalf("open on a full disk: %v", err)
		}
		if recs, err := s.ReadAll(ctx, 1, 100); err != nil || len(recs) != 50 {
			t.Fatalf("read on a full disk: %d records, %v", len(recs), err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close on a full disk: %v", err)
		}
		if _, err := os.Stat(cleanPath(path)); err == nil && newestMeta(t, path).freelist == noFreelist {
			t.Fatal("a clean-close marker for a file without a freelist")
		}
	})
}

// TestCloseWithoutWritesKeepsTheFile: a session that wrote nothing (a
// start refused on a damaged log) leaves the file byte for byte as it
// found it; only the time stamp and the marker change.
func TestCloseWithoutWritesKeepsTheFile(t *testing.T) {
	path := closedStoreFile(t)
	before := fileSum(t, path)
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadAll(context.Background(), 1, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fileSum(t, path) != before {
		t.Fatal("an open and close without writes changed the file")
	}
	if reopen(t, path) {
		t.Fatal("the unchanged store was walked")
	}
}
