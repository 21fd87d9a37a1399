package boltstore

import (
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
)

// checkPages walks every page reachable from the newest valid meta page of
// the file at path and checks what bbolt would otherwise assert with a
// panic: each page says it is the page it was reached as, has a known
// type, lies below the high-water mark, and holds its elements within its
// bounds. It must run before bbolt scans the file on its own goroutines
// (the freelist rebuild of a read-write open, Tx.Check), where a panic on a
// damaged page cannot be recovered and kills the process with a trace.
//
// It reads the file with ReadAt (the same pages bbolt's scan reads at every
// read-write open), and returns an error wrapping eventstore.ErrDamaged.
func checkPages(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // a new store
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return err
	}
	head := make([]byte, fallbackPage+metaOffset+metaSize)
	n, err := f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	m0 := parseMeta(head[:n])
	ps := uint32(fallbackPage)
	if m0.ok {
		ps = m0.pageSize
	}
	b1 := make([]byte, metaOffset+metaSize)
	n, err = f.ReadAt(b1, int64(ps))
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	m1 := parseMeta(b1[:n])
	best, raw := m0, head
	if !m0.ok || (m1.ok && m1.txid > m0.txid) {
		best, raw = m1, b1
	}
	if !best.ok {
		return damaged("no valid meta page")
	}
	root := binary.LittleEndian.Uint64(raw[metaOffset+16:])
	w := &pageWalker{f: f, pageSize: int(best.pageSize), hwm: best.pgid, seen: make([]uint64, best.pgid/64+1)}
	if err := w.walk(root, 0); err != nil {
		return err
	}
	if best.freelist == noFreelist {
		return nil
	}
	return w.freelist(best.freelist)
}

const (
	pageHeaderSize = 16
	elemSize       = 16
	flagBranch     = 0x01
	flagLeaf       = 0x02
	flagFreelist   = 0x10
	leafBucket     = 0x01
	inBucketSize   = 16
	maxTreeDepth   = 64
)

type pageWalker struct {
	f        *os.File
	pageSize int
	hwm      uint64
	seen     []uint64 // bitmap of the pages reached
}

// walk checks the page id (reached from a parent) and everything below it.
func (w *pageWalker) walk(id uint64, depth int) error {
	if depth > maxTreeDepth {
		return damaged("page %d: the tree is deeper than %d (a cycle?)", id, maxTreeDepth)
	}
	if id < 2 || id >= w.hwm {
		return damaged("page %d is outside the pages in use (2..%d)", id, w.hwm-1)
	}
	if w.seen[id/64]&(1<<(id%64)) != 0 {
		return damaged("page %d is reached twice", id)
	}
	w.seen[id/64] |= 1 << (id % 64)
	hdr := make([]byte, pageHeaderSize)
	if _, err := w.f.ReadAt(hdr, int64(id)*int64(w.pageSize)); err != nil {
		return damaged("page %d does not read: %v", id, err)
	}
	le := binary.LittleEndian
	if got := le.Uint64(hdr); got != id {
		return damaged("page %d identifies as page %d (overwritten or zeroed)", id, got)
	}
	overflow := uint64(le.Uint32(hdr[12:]))
	if id+overflow >= w.hwm {
		return damaged("page %d overflows past the pages in use", id)
	}
	buf := make([]byte, (overflow+1)*uint64(w.pageSize))
	if _, err := w.f.ReadAt(buf, int64(id)*int64(w.pageSize)); err != nil {
		return damaged("page %d does not read: %v", id, err)
	}
	for i := uint64(1); i <= overflow; i++ {
		w.seen[(id+i)/64] |= 1 << ((id + i) % 64)
	}
	return w.node(buf, id, depth)
}

// freelist checks the freelist page written by the newest commit (the
// store keeps it so that an open does not rebuild it by reading every
// page): bbolt trusts its ids and would hand out a page still in use, so
// every id must lie among the pages in use and be reachable from no
// bucket, and none may be listed twice. It runs after the tree walk.
func (w *pageWalker) freelist(id uint64) error {
	if id < 2 || id >= w.hwm {
		return damaged("freelist page %d is outside the pages in use (2..%d)", id, w.hwm-1)
	}
	if w.isSeen(id) {
		return damaged("freelist page %d is also a page of the tree", id)
	}
	hdr := make([]byte, pageHeaderSize+8)
	if _, err := w.f.ReadAt(hdr, int64(id)*int64(w.pageSize)); err != nil {
		return damaged("freelist page %d does not read: %v", id, err)
	}
	le := binary.LittleEndian
	if got := le.Uint64(hdr); got != id {
		return damaged("freelist page %d identifies as page %d (overwritten or zeroed)", id, got)
	}
	if flags := le.Uint16(hdr[8:]); flags != flagFreelist {
		return damaged("freelist page %d has page type %#x", id, flags)
	}
	overflow := uint64(le.Uint32(hdr[12:]))
	if id+overflow >= w.hwm {
		return damaged("freelist page %d overflows past the pages in use", id)
	}
	for i := uint64(0); i <= overflow; i++ {
		w.mark(id + i)
	}
	start, count := uint64(pageHeaderSize), uint64(le.Uint16(hdr[10:]))
	if count == 0xFFFF {
		start, count = pageHeaderSize+8, le.Uint64(hdr[pageHeaderSize:])
	}
	size := (overflow + 1) * uint64(w.pageSize)
	if count > (size-start)/8 {
		return damaged("freelist page %d: %d ids do not fit", id, count)
	}
	buf := make([]byte, start+count*8)
	if _, err := w.f.ReadAt(buf, int64(id)*int64(w.pageSize)); err != nil {
		return damaged("freelist page %d does not read: %v", id, err)
	}
	for i := uint64(0); i < count; i++ {
		free := le.Uint64(buf[start+i*8:])
		if free < 2 || free >= w.hwm {
			return damaged("freelist page %d lists page %d, outside the pages in use", id, free)
		}
		if w.isSeen(free) {
			return damaged("freelist page %d lists page %d, which is in use or listed twice", id, free)
		}
		w.mark(free)
	}
	return nil
}

func (w *pageWalker) isSeen(id uint64) bool { return w.seen[id/64]&(1<<(id%64)) != 0 }

func (w *pageWalker) mark(id uint64) { w.seen[id/64] |= 1 << (id % 64) }

// node checks a branch or leaf page held in p (a whole page, or the inline
// page of a small bucket).
func (w *pageWalker) node(p []byte, id uint64, depth int) error {
	le := binary.LittleEndian
	flags := le.Uint16(p[8:])
	count := int(le.Uint16(p[10:]))
	if pageHeaderSize+count*elemSize > len(p) {
		return damaged("page %d: %d elements do not fit", id, count)
	}
	switch flags {
	case flagBranch:
		if count == 0 {
			return damaged("page %d: empty branch", id)
		}
		for i := 0; i < count; i++ {
			e := pageHeaderSize + i*elemSize
			pos, ksize := int(le.Uint32(p[e:])), int(le.Uint32(p[e+4:]))
			if e+pos+ksize > len(p) || e+pos < 0 {
				return damaged("page %d: key %d out of bounds", id, i)
			}
			if err := w.walk(le.Uint64(p[e+8:]), depth+1); err != nil {
				return err
			}
		}
	case flagLeaf:
		for i := 0; i < count; i++ {
			e := pageHeaderSize + i*elemSize
			eflags := le.Uint32(p[e:])
			pos, ksize, vsize := int(le.Uint32(p[e+4:])), int(le.Uint32(p[e+8:])), int(le.Uint32(p[e+12:]))
			start := e + pos
			if pos < 0 || ksize < 0 || vsize < 0 || start+ksize+vsize > len(p) {
				return damaged("page %d: element %d out of bounds", id, i)
			}
			if eflags&leafBucket == 0 {
				continue
			}
			v := p[start+ksize : start+ksize+vsize]
			if len(v) < inBucketSize {
				return damaged("page %d: bucket header %d too short", id, i)
			}
			if root := le.Uint64(v); root != 0 {
				if err := w.walk(root, depth+1); err != nil {
					return err
				}
			} else if len(v) >= inBucketSize+pageHeaderSize {
				if err := w.node(v[inBucketSize:], id, depth+1); err != nil {
					return err
				}
			} else {
				return damaged("page %d: inline bucket %d too short", id, i)
			}
		}
	default:
		return damaged("page %d has page type %#x, not a branch or leaf", id, flags)
	}
	return nil
}
