package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
	"syscall"

	bolt "go.etcd.io/bbolt"

	"github.com/e4c2/e4c2/eventstore"
)

// damaged returns an error wrapping eventstore.ErrDamaged. what says what
// is wrong for an operator; it never holds record data.
func damaged(format string, args ...any) error {
	return &eventstore.DamagedError{Detail: fmt.Sprintf(format, args...)}
}

// guard turns a panic of the storage library (a damaged page makes bbolt
// panic) into an error wrapping eventstore.ErrDamaged, and a fault on the
// memory map (SIGBUS on a file truncated under the map) into a panic it
// can recover: the caller gets one error line, never a trace.
func guard(err *error) {
	if r := recover(); r != nil {
		*err = damaged("the storage library failed reading the file (%v)", r)
	}
}

// protect runs fn with faults on the memory map turned into panics and
// every panic into an ErrDamaged error.
func protect(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer guard(&err)
	return fn()
}

// noSpace maps a write that failed for want of space to ErrNoSpace.
func noSpace(err error) error {
	if err != nil && (errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) && !errors.Is(err, eventstore.ErrNoSpace) {
		return fmt.Errorf("%w: %w", eventstore.ErrNoSpace, err)
	}
	return err
}

// bbolt's meta page, as laid out in its file format (version 2): a 16-byte
// page header, then magic, version, page size, flags, root bucket, freelist
// page, high-water page id, transaction id and an FNV-64a checksum of the
// fields before it. Read here so a file is checked before it is mapped.
const (
	metaOffset   = 16
	metaMagic    = 0xED0CDAED
	metaVersion  = 2
	metaSumSpan  = 56 // bytes of the meta the checksum covers
	metaSize     = 64
	minPageSize  = 512
	maxPageSize  = 1 << 16
	fallbackPage = 4096
)

type metaPage struct {
	pageSize uint32
	freelist uint64 // the freelist page, or noFreelist when it is rebuilt at open
	pgid     uint64 // pages in use: the file must hold at least pgid pages
	txid     uint64
	ok       bool
}

// noFreelist is the freelist page id of a meta page written without a
// freelist (bbolt NoFreelistSync).
const noFreelist = ^uint64(0)

func parseMeta(b []byte) metaPage {
	if len(b) < metaOffset+metaSize {
		return metaPage{}
	}
	m := b[metaOffset : metaOffset+metaSize]
	le := binary.LittleEndian
	h := fnv.New64a()
	_, _ = h.Write(m[:metaSumSpan])
	if le.Uint32(m[0:]) != metaMagic || le.Uint32(m[4:]) != metaVersion || le.Uint64(m[56:]) != h.Sum64() {
		return metaPage{}
	}
	ps := le.Uint32(m[8:])
	if ps < minPageSize || ps > maxPageSize {
		return metaPage{}
	}
	return metaPage{pageSize: ps, freelist: le.Uint64(m[32:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:]), ok: true}
}

// precheck reads both meta pages of an existing file and checks that the
// file holds every page the newest valid one says is in use: mapping a
// truncated file and reading past its end kills the process with SIGBUS.
// It returns whether one meta page is invalid (bbolt then falls back to the
// other, losing the last transaction unless it was never acknowledged).
func precheck(path string) (fallback bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	if fi.Size() == 0 {
		return false, nil // a new file: bbolt initialises it
	}
	buf := make([]byte, fallbackPage)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	m0 := parseMeta(buf[:n])
	ps := uint32(fallbackPage)
	if m0.ok {
		ps = m0.pageSize
	}
	buf1 := make([]byte, metaOffset+metaSize)
	n, err = f.ReadAt(buf1, int64(ps))
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	m1 := parseMeta(buf1[:n])
	best := m0
	if !m0.ok || (m1.ok && m1.txid > m0.txid) {
		best = m1
	}
	if !best.ok {
		return false, damaged("no valid meta page (the file is not a store, or its first pages are destroyed)")
	}
	if need := int64(best.pgid) * int64(best.pageSize); fi.Size() < need {
		return false, damaged("the file is truncated: %d bytes, its pages in use need %d", fi.Size(), need)
	}
	return m0.ok != m1.ok, nil
}

// The sidecar file (<store>.pos) records the last position of the newest
// acknowledged commit, written after each commit (without fsync: a process
// crash keeps it in the page cache; after a power loss it is at worst
// behind the file). A store file that ends before it lost acknowledged
// events: a meta page fell back to the previous transaction.
const sidecarMagic = "e4c2pos1"

const sidecarSize = len(sidecarMagic) + 8 + 4

func sidecarPath(path string) string { return path + ".pos" }

func encodeSidecar(pos uint64) []byte {
	b := append([]byte(sidecarMagic), make([]byte, 8)...)
	binary.BigEndian.PutUint64(b[len(sidecarMagic):], pos)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// readSidecar returns the acknowledged position recorded beside path, and
// false when there is no (readable, intact) sidecar.
func readSidecar(path string) (uint64, bool) {
	b, err := os.ReadFile(sidecarPath(path))
	if err != nil || len(b) != sidecarSize || !bytes.HasPrefix(b, []byte(sidecarMagic)) {
		return 0, false
	}
	body := b[:sidecarSize-4]
	if crc32.ChecksumIEEE(body) != binary.BigEndian.Uint32(b[sidecarSize-4:]) {
		return 0, false
	}
	return binary.BigEndian.Uint64(body[len(sidecarMagic):]), true
}

// writeSidecar records pos after a commit; a failure only loses the
// detection, never an event.
func (s *Store) writeSidecar(pos uint64) {
	if s.side == nil {
		return
	}
	_, _ = s.side.WriteAt(encodeSidecar(pos), 0)
}

// checkSidecar fails when the file ends before the last acknowledged
// position recorded beside it.
func checkSidecar(path string, last uint64, fallback bool) error {
	ack, ok := readSidecar(path)
	if !ok || ack <= last {
		return nil
	}
	why := ""
	if fallback {
		why = " (one meta page is invalid: the file fell back to an older transaction)"
	}
	return damaged("the log ends at position %d but position %d was acknowledged%s; restore from backup, or delete %s if this older copy is the one to keep",
		last, ack, why, sidecarPath(path))
}

// CheckFile checks every page of the file: first its own walk of the page
// tree (checkPages), then bbolt's consistency check, which runs on
// goroutines where a damaged page would panic beyond recovery. e4c2 verify
// runs it on a store opened read-only; it reads the whole file. A damaged
// page returns an error wrapping eventstore.ErrDamaged.
func (s *Store) CheckFile(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkPages(s.path); err != nil {
		return fmt.Errorf("boltstore: check %s: %w", s.path, err)
	}
	return s.view(ctx, func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			if err != nil {
				// Drain so the checker goroutine ends.
				for range tx.Check() {
				}
				return damaged("consistency check: %v", err)
			}
		}
		return nil
	})
}

// Health implements eventstore.HealthReporter: nil when an append should
// succeed; ErrReadOnly for a read-only store; ErrNoSpace when the disk has
// (almost) no space left, or when the last write failed for want of space
// and no space was freed since.
func (s *Store) Health() error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	if s.readOnly {
		return eventstore.ErrReadOnly
	}
	free, measured := freeBytes(s.path)
	if measured && free < minFreeBytes {
		return fmt.Errorf("%w: %d bytes free", eventstore.ErrNoSpace, free)
	}
	if we := s.writeErr.Load(); we != nil {
		if !measured || free < we.free+minFreeBytes {
			return we.err
		}
	}
	return nil
}

// minFreeBytes is the free space below which Health reports ErrNoSpace
// before an append fails: a commit needs a few pages.
const minFreeBytes = 64 << 10

// writeFailure is a write that failed for want of space, with the free
// space measured then: Health reports it until space is freed or a write
// succeeds.
type writeFailure struct {
	err  error
	free uint64
}

// setWriteErr records the outcome of a write for Health.
func (s *Store) setWriteErr(err error) {
	if err == nil {
		s.writeErr.Store(nil)
		return
	}
	if errors.Is(err, eventstore.ErrNoSpace) {
		free, _ := freeBytes(s.path)
		s.writeErr.Store(&writeFailure{err: err, free: free})
	}
}

// QuickVerify implements eventstore.QuickVerifier: every stream head must
// be the hash and version of the stream's newest record, and every record
// after the last verified position must chain onto its stream. The heads
// were written in the same transaction as the records, so an altered
// newest record does not match its head.
func (s *Store) QuickVerify(ctx context.Context) (*eventstore.VerifyReport, error) {
	rep := &eventstore.VerifyReport{}
	var first *eventstore.ChainError
	report := func(stream string, version, position uint64, reason string) {
		if first == nil || position < first.Position {
			first = &eventstore.ChainError{Stream: stream, Version: version, Position: position, Reason: reason}
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	pend := make(map[string]map[uint64]uint64)
	for _, e := range s.pending {
		m := pend[e.stream]
		if m == nil {
			m = make(map[uint64]uint64)
			pend[e.stream] = m
		}
		m[e.version] = e.position
	}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		events := tx.Bucket(bucketEvents)
		index := tx.Bucket(bucketStreams)
		lookup := func(stream string, version uint64) (uint64, bool) {
			if p, ok := pend[stream][version]; ok {
				return p, true
			}
			v := index.Get(indexKey(stream, version))
			if len(v) != 8 {
				return 0, false
			}
			return binary.BigEndian.Uint64(v), true
		}
		read := func(pos uint64) (*eventstore.Record, error) {
			v := events.Get(posKey(pos))
			if v == nil {
				return nil, nil
			}
			r := &eventstore.Record{}
			if err := decodeRecord(bytes.Clone(v), pos, r); err != nil {
				return nil, err
			}
			return r, nil
		}
		// Every stream head against the stream's newest record.
		for stream, h := range s.heads {
			if err := ctx.Err(); err != nil {
				return err
			}
			pos, ok := lookup(stream, h.Version)
			if !ok {
				report(stream, h.Version, 0, "the stream's newest record is missing from the index")
				continue
			}
			r, err := read(pos)
			if err != nil {
				return err
			}
			switch {
			case r == nil:
				report(stream, h.Version, pos, "the stream's newest record is missing")
			case r.Stream != stream || r.Version != h.Version:
				report(stream, h.Version, pos, "the record at the head's position belongs to another stream or version")
			case eventstore.HashRecord(r) != h.Hash:
				report(stream, h.Version, pos, "record does not match the recorded stream head hash")
			}
		}
		// The tail since the last verified position.
		var verified uint64
		if v := tx.Bucket(bucketMeta).Get(keyVerified); len(v) == 8 {
			verified = binary.BigEndian.Uint64(v)
		}
		type tip struct {
			version, position uint64
			hash              [32]byte
		}
		tips := make(map[string]tip)
		next := verified + 1
		c := events.Cursor()
		for k, v := c.Seek(posKey(next)); k != nil; k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if len(k) != 8 {
				return fmt.Errorf("%w: event key of %d bytes", errCorrupt, len(k))
			}
			pos := binary.BigEndian.Uint64(k)
			var r eventstore.Record
			if err := decodeRecord(bytes.Clone(v), pos, &r); err != nil {
				return err
			}
			if pos != next {
				report(r.Stream, r.Version, pos, fmt.Sprintf("position gap: expected position %d", next))
			}
			next = pos + 1
			t, seen := tips[r.Stream]
			if !seen && r.Version > 1 {
				// The predecessor was verified before (or is missing).
				ppos, found := lookup(r.Stream, r.Version-1)
				var prev *eventstore.Record
				if found {
					var err error
					if prev, err = read(ppos); err != nil {
						return err
					}
				}
				if prev == nil || prev.Stream != r.Stream || prev.Version != r.Version-1 {
					t = tip{version: r.Version - 1, position: pos, hash: r.PrevHash}
					report(r.Stream, r.Version, pos, fmt.Sprintf("version %d of the stream is missing", r.Version-1))
				} else {
					t = tip{version: prev.Version, position: ppos, hash: eventstore.HashRecord(prev)}
				}
			}
			switch {
			case r.Version != t.version+1:
				report(r.Stream, r.Version, pos, fmt.Sprintf("version gap: expected version %d", t.version+1))
			case r.PrevHash != t.hash:
				if r.Version == 1 {
					report(r.Stream, r.Version, pos, "first record of the stream has a non-zero previous hash")
				} else {
					// The predecessor no longer hashes to what this
					// record committed to: it was altered (or this link).
					report(r.Stream, t.version, t.position,
						fmt.Sprintf("record does not match the hash committed by version %d", r.Version))
				}
			}
			tips[r.Stream] = tip{version: r.Version, position: pos, hash: eventstore.HashRecord(&r)}
			rep.Records++
			rep.LastPosition = pos
		}
		if rep.LastPosition == 0 {
			rep.LastPosition = verified
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: quick verify: %w", err)
	}
	rep.Streams = len(s.heads)
	if first != nil {
		return nil, first
	}
	return rep, nil
}

// MarkVerified implements eventstore.QuickVerifier.
func (s *Store) MarkVerified(ctx context.Context, pos uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	if s.readOnly {
		return eventstore.ErrReadOnly
	}
	err := protect(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keyVerified, posKey(pos))
		})
	})
	if err != nil {
		return fmt.Errorf("boltstore: mark verified: %w", noSpace(err))
	}
	return nil
}
