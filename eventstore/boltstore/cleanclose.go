package boltstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// The clean-close marker (<store>.clean) lets a read-write Open skip the
// walk of every page (checkPages, seconds on a log of millions of events)
// when the file is, byte for byte, the one a clean Close left. Close
// writes it last; Open consumes it (removes it, durably, before anything
// is written) and walks the pages unless it matches the file:
//
//   - size, device and inode: a truncated, extended or replaced (restored,
//     copied) file does not match;
//   - the modification time, which Close first sets one second into the
//     past: any later write stamps the current time (however coarse the
//     file system's clock, it is later than that), so a page zeroed or
//     overwritten in place, even in the same clock tick as the close, does
//     not match;
//   - a hash of both meta pages, with the transaction id: any commit
//     (even one whose time stamp a power loss dropped: bbolt syncs data,
//     not always metadata) rewrites a meta page.
//
// After a crash there is no marker, so the pages are walked. The marker
// stands for the file as the storage library left it; it is no defence
// against someone who alters the file and then resets its time stamp on
// purpose (the hash chain, checked by verify, is).
const cleanMagic = "e4c2cln1"

const cleanSize = len(cleanMagic) + 6*8 + sha256.Size + 4

func cleanPath(path string) string { return path + ".clean" }

// cleanState is what the marker records about the file.
type cleanState struct {
	size, mtime, dev, ino, txid uint64
	metas                       [sha256.Size]byte
}

func (c *cleanState) encode() []byte {
	b := append(make([]byte, 0, cleanSize), cleanMagic...)
	for _, v := range []uint64{c.size, c.mtime, c.dev, c.ino, c.txid, 0} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	b = append(b, c.metas[:]...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

func decodeClean(b []byte) (cleanState, bool) {
	var c cleanState
	if len(b) != cleanSize || !bytes.HasPrefix(b, []byte(cleanMagic)) ||
		crc32.ChecksumIEEE(b[:cleanSize-4]) != binary.BigEndian.Uint32(b[cleanSize-4:]) {
		return c, false
	}
	v := b[len(cleanMagic):]
	for _, p := range []*uint64{&c.size, &c.mtime, &c.dev, &c.ino, &c.txid} {
		*p = binary.BigEndian.Uint64(v)
		v = v[8:]
	}
	copy(c.metas[:], v[8:])
	return c, true
}

// fileState reads what the marker records from the file at path. ok is
// false when the file cannot be described (then it is walked): no valid
// meta page, or a meta page without a freelist (Close could not write it:
// bbolt would rebuild it by reading every page on a goroutine of its own,
// where a damaged page cannot be recovered from).
func fileState(path string) (c cleanState, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return c, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return c, false
	}
	head := make([]byte, fallbackPage+metaOffset+metaSize)
	n, err := f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return c, false
	}
	m0 := parseMeta(head[:n])
	if !m0.ok {
		return c, false
	}
	m1raw := make([]byte, metaOffset+metaSize)
	if _, err := f.ReadAt(m1raw, int64(m0.pageSize)); err != nil {
		return c, false
	}
	m1 := parseMeta(m1raw)
	best := m0
	if !m1.ok {
		return c, false
	}
	if m1.txid > m0.txid {
		best = m1
	}
	if best.freelist == noFreelist {
		return c, false
	}
	h := sha256.New()
	h.Write(head[:metaOffset+metaSize])
	h.Write(m1raw)
	copy(c.metas[:], h.Sum(nil))
	c.size = uint64(fi.Size())
	c.mtime = uint64(fi.ModTime().UnixNano())
	c.dev, c.ino = fileIdentity(fi)
	c.txid = best.txid
	return c, true
}

// consumeClean removes the marker beside path and reports whether it
// matched the file. The removal is synced to the directory before Open
// writes anything, so a marker never outlives the state it describes.
func consumeClean(path string) bool {
	b, err := os.ReadFile(cleanPath(path))
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if rerr := os.Remove(cleanPath(path)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		return false
	}
	syncDir(filepath.Dir(path))
	if err != nil {
		return false
	}
	want, ok := decodeClean(b)
	if !ok {
		return false
	}
	got, ok := fileState(path)
	return ok && got == want
}

// markClean writes the marker for the closed file at path. Any failure
// only costs the next Open a walk of the pages.
func markClean(path string) {
	past := time.Now().Add(-time.Second)
	if err := os.Chtimes(path, past, past); err != nil {
		return
	}
	c, ok := fileState(path)
	if !ok {
		return
	}
	tmp := cleanPath(path) + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	_, err = f.Write(c.encode())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, cleanPath(path))
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
}

// syncDir makes a removal or rename in dir durable (best effort).
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
