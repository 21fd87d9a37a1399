package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/internal/notify"
)

var (
	bucketEvents  = []byte("events")
	bucketStreams = []byte("streams")
	bucketHeads   = []byte("heads")
	bucketKeyring = []byte("keyring")
	bucketMeta    = []byte("meta")
	keyKeyring    = []byte("keyring")
	keyFormat     = []byte("format")
	keyIndexed    = []byte("indexed")  // position the stream index is complete through
	keyVerified   = []byte("verified") // position through which a QuickVerify passed
)

// fileFormat is the layout version written in the meta bucket. Format 2
// writes every stream head in the transaction of its records; format 1
// wrote heads with the lazy index flush and rebuilt the newest ones from
// the records after a crash (so an altered newest record went unnoticed).
// A format-1 file is upgraded when opened for writing.
const (
	fileFormat       = 2
	legacyFileFormat = 1
)

// maxBatch bounds the appends of one group commit, so a single transaction
// (and the latency of its callers) stays bounded under heavy load.
const maxBatch = 4096

// initialMmap is the initial address-space reservation of the file map.
const initialMmap = 1 << 30

// Options tune Open. The zero value is the durable default.
type Options struct {
	// LockTimeout bounds the wait for the file lock held by another
	// process (default 2 s); a store file has a single writer.
	LockTimeout time.Duration
	// ReadOnly opens the file without write access (bbolt ReadOnly, a
	// shared lock): verify and forensics change nothing in the file, and
	// work on an immutable copy or a full disk. Every write fails with
	// eventstore.ErrReadOnly.
	ReadOnly bool

	// freelistEveryCommit writes the freelist at every commit instead of
	// at Close only (a benchmark shows what that costs).
	freelistEveryCommit bool
}

// openBolt opens the bbolt file. Durability: bolt fsyncs every commit
// unless NoSync is set; it is not. The freelist is not written at each
// commit (on a large file it spans tens of pages: a third fewer appends
// per second when it was), only by the last commit of Close; an open then
// reads it from its page instead of rebuilding it from every page of the
// file (seconds at millions of events), which it still does after a
// crash. A large initial mmap avoids remapping (which waits for readers)
// as the file grows. The file itself still grows only as needed.
func openBolt(path string, timeout time.Duration, opts *Options) (db *bolt.DB, err error) {
	err = protect(func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{
			Timeout:         timeout,
			FreelistType:    bolt.FreelistMapType,
			NoFreelistSync:  !opts.freelistEveryCommit,
			InitialMmapSize: initialMmap,
			ReadOnly:        opts.ReadOnly,
		})
		return err
	})
	return db, err
}

// Store is the bolt-backed event log.
type Store struct {
	db       *bolt.DB
	path     string
	readOnly bool
	walked   bool     // Open walked every page (no clean-close marker matched)
	openTxid int      // the file's transaction id when opened
	side     *os.File // the <path>.pos sidecar (nil read-only)
	closed   atomic.Bool
	head     *notify.Head
	writeErr atomic.Pointer[writeFailure] // the last write's lack of space, for Health

	queue   chan *appendReq
	done    chan struct{} // closed by Close: the committer must stop
	exited  chan struct{} // closed when the committer has stopped
	nextPos uint64        // owned by the committer after Open

	commits atomic.Uint64 // group commits done (for benchmarks and tests)
	batched atomic.Uint64 // requests answered by those commits

	// mu guards heads and pending. The committer is their only writer; it
	// reads them without the lock and writes them under it.
	mu      sync.RWMutex
	heads   map[string]eventstore.StreamHead // every stream's head
	pending []indexEntry                     // index entries not yet flushed
}

var (
	_ eventstore.Store          = (*Store)(nil)
	_ eventstore.KeyringStorage = (*Store)(nil)
	_ eventstore.HeadStore      = (*Store)(nil)
	_ eventstore.Importer       = (*Store)(nil)
	_ eventstore.HealthReporter = (*Store)(nil)
	_ eventstore.QuickVerifier  = (*Store)(nil)
)

type appendReq struct {
	ctx      context.Context
	stream   string
	expected int64
	evs      []eventstore.EventData
	recs     []eventstore.Record // an Import instead of an append
	reply    chan appendResult
}

type appendResult struct {
	version uint64
	err     error
}

// fileGrowth is how much the store file grows at a time.
const fileGrowth = 1 << 20

// Open opens (creating if needed, with mode 0600) the store file at path.
//
// The file is checked before it is trusted: both meta pages are read and
// the file must hold every page in use (mapping a truncated file would
// kill the process with SIGBUS), a panic of the storage library on a
// damaged page becomes an error, and a file that ends before the last
// acknowledged position (recorded in the <path>.pos sidecar) lost a
// transaction. Each of these returns an error wrapping
// eventstore.ErrDamaged. A read-write Open also walks every page
// (checkPages) unless the clean-close marker shows the file unchanged
// since a clean Close. Open writes nothing to an existing file (so it
// works on a full disk); a read-only Open writes nothing at all.
func Open(path string, opts *Options) (*Store, error) {
	if opts == nil {
		opts = &Options{}
	}
	timeout := opts.LockTimeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	fallback, err := precheck(path)
	walked := false
	if err == nil && !opts.ReadOnly && !consumeClean(path) {
		// A damaged page must be found here, before bbolt reads it on a
		// goroutine of its own where a panic cannot be recovered (the
		// freelist rebuild of a file written without one): walk the pages,
		// unless the file is exactly as a clean Close left it (see
		// cleanclose.go). The pages are walked after every crash.
		err = checkPages(path)
		walked = true
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	db, err := openBolt(path, timeout, opts)
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	// bbolt grows the file 16 MiB at a time by default: a fresh data
	// directory showed a 16 MiB store for a few kilobytes of log. Growing
	// by 1 MiB costs one ftruncate per MiB written, nothing per commit.
	db.AllocSize = fileGrowth
	s := &Store{
		db:       db,
		path:     path,
		readOnly: opts.ReadOnly,
		queue:    make(chan *appendReq, maxBatch),
		done:     make(chan struct{}),
		exited:   make(chan struct{}),
		heads:    make(map[string]eventstore.StreamHead),
		walked:   walked,
	}
	s.openTxid = s.txid()
	last, err := s.load()
	if err == nil {
		err = checkSidecar(path, last, fallback)
	}
	if err == nil && !opts.ReadOnly {
		s.side, err = os.OpenFile(sidecarPath(path), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			// No sidecar (e.g. no space for a new file): the store works,
			// only a lost transaction goes undetected.
			s.side, err = nil, nil
		} else {
			s.writeSidecar(last)
		}
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	s.head = notify.NewHead(last)
	s.nextPos = last + 1
	if opts.ReadOnly {
		close(s.exited)
	} else {
		go s.committer()
	}
	return s, nil
}

// load sets up a new file (buckets, format), upgrades a format-1 file,
// and reads the last position, the stream heads and the index entries not
// yet flushed.
func (s *Store) load() (last uint64, err error) {
	defer guard(&err)
	var setup bool
	err = protect(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			for _, name := range [][]byte{bucketEvents, bucketStreams, bucketHeads, bucketKeyring, bucketMeta} {
				if tx.Bucket(name) == nil {
					setup = true
					return nil
				}
			}
			v := tx.Bucket(bucketMeta).Get(keyFormat)
			setup = len(v) != 1 || v[0] != fileFormat
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	if setup && s.readOnly {
		// A read-only open of a new or format-1 file reads what is there.
		err = protect(func() error {
			return s.db.View(func(tx *bolt.Tx) error {
				for _, name := range [][]byte{bucketEvents, bucketStreams, bucketHeads, bucketKeyring, bucketMeta} {
					if tx.Bucket(name) == nil {
						return damaged("bucket %s is missing (not a store, or a store never opened for writing)", name)
					}
				}
				var err error
				last, err = s.loadIndex(tx, false)
				return err
			})
		})
		return last, err
	}
	if setup {
		err = protect(func() error {
			return s.db.Update(func(tx *bolt.Tx) error {
				for _, name := range [][]byte{bucketEvents, bucketStreams, bucketHeads, bucketKeyring} {
					if _, err := tx.CreateBucketIfNotExists(name); err != nil {
						return err
					}
				}
				meta, err := tx.CreateBucketIfNotExists(bucketMeta)
				if err != nil {
					return err
				}
				switch v := meta.Get(keyFormat); {
				case v == nil, len(v) == 1 && v[0] == legacyFileFormat:
				case len(v) != 1 || v[0] != fileFormat:
					return fmt.Errorf("boltstore: unsupported file format %v", v)
				}
				last, err = s.loadIndex(tx, true)
				if err != nil {
					return err
				}
				return meta.Put(keyFormat, []byte{fileFormat})
			})
		})
		return last, noSpace(err)
	}
	err = protect(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			var err error
			last, err = s.loadIndex(tx, false)
			return err
		})
	})
	return last, err
}

// loadIndex reads every stream head and the last position, and lists the
// index entries of the events appended since the last flush as pending
// (they are written by the next flush). The heads are never rebuilt from
// the records, since a format-2 commit writes them with the records: a
// record altered after its commit then no longer matches its head. Only a
// format-1 file (upgrade set, in a write transaction, or read-only) has
// the heads of its unflushed tail rebuilt, as that format did; upgrade
// writes them.
func (s *Store) loadIndex(tx *bolt.Tx, upgrade bool) (uint64, error) {
	var last uint64
	if k, _ := tx.Bucket(bucketEvents).Cursor().Last(); k != nil {
		if len(k) != 8 {
			return 0, fmt.Errorf("%w: event key of %d bytes", errCorrupt, len(k))
		}
		last = binary.BigEndian.Uint64(k)
	}
	err := tx.Bucket(bucketHeads).ForEach(func(k, v []byte) error {
		h, err := decodeHead(v)
		if err != nil {
			return err
		}
		s.heads[string(k)] = h
		return nil
	})
	if err != nil {
		return 0, err
	}
	format := fileFormat
	if v := tx.Bucket(bucketMeta).Get(keyFormat); len(v) == 1 {
		format = int(v[0])
	}
	legacy := format == legacyFileFormat
	var indexed uint64
	if v := tx.Bucket(bucketMeta).Get(keyIndexed); len(v) == 8 {
		indexed = binary.BigEndian.Uint64(v)
	}
	touched := make(map[string]struct{})
	c := tx.Bucket(bucketEvents).Cursor()
	for k, v := c.Seek(posKey(indexed + 1)); k != nil; k, v = c.Next() {
		var r eventstore.Record
		if len(k) != 8 {
			return 0, fmt.Errorf("%w: event key of %d bytes", errCorrupt, len(k))
		}
		pos := binary.BigEndian.Uint64(k)
		if err := decodeRecord(bytes.Clone(v), pos, &r); err != nil {
			return 0, err
		}
		if legacy {
			s.heads[r.Stream] = eventstore.StreamHead{Version: r.Version, Hash: eventstore.HashRecord(&r)}
			touched[r.Stream] = struct{}{}
		}
		s.pending = append(s.pending, indexEntry{stream: r.Stream, version: r.Version, position: pos})
	}
	if legacy && upgrade {
		hb := tx.Bucket(bucketHeads)
		for stream := range touched {
			if err := hb.Put([]byte(stream), headValue(s.heads[stream])); err != nil {
				return 0, err
			}
		}
	}
	return last, nil
}

// txid returns the id of the file's newest transaction (-1 when it
// cannot be read).
func (s *Store) txid() int {
	id := -1
	_ = protect(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			id = tx.ID()
			return nil
		})
	})
	return id
}

// Path returns the file of the store.
func (s *Store) Path() string { return s.path }

// Append implements eventstore.Store. The append joins the next group
// commit; it returns once that transaction is fsynced (or failed).
//
// A context cancelled while the append waits in the queue makes the
// committer skip it, so an error from Append always means nothing was
// written; once the commit has started, Append waits for its outcome.
func (s *Store) Append(ctx context.Context, stream string, expected int64, evs ...eventstore.EventData) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := eventstore.ValidateAppend(stream, expected, evs); err != nil {
		return 0, err
	}
	if s.closed.Load() {
		return 0, eventstore.ErrClosed
	}
	if s.readOnly {
		return 0, eventstore.ErrReadOnly
	}
	req := &appendReq{ctx: ctx, stream: stream, expected: expected, evs: evs, reply: make(chan appendResult, 1)}
	select {
	case s.queue <- req:
	case <-s.done:
		return 0, eventstore.ErrClosed
	}
	select {
	case r := <-req.reply:
		return r.version, r.err
	case <-s.exited:
		// The committer may have answered just before it stopped.
		select {
		case r := <-req.reply:
			return r.version, r.err
		default:
			return 0, eventstore.ErrClosed
		}
	}
}

// committer applies queued appends in batches: one bolt transaction and one
// fsync per batch, however many writers wait.
func (s *Store) committer() {
	defer close(s.exited)
	batch := make([]*appendReq, 0, maxBatch)
	last := 0 // size of the previous batch
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case req := <-s.queue:
			batch = append(batch[:0], req)
			batch = s.gather(batch, last, timer)
			s.commit(batch)
			last = len(batch)
			clear(batch)
		case <-s.done:
			for {
				select {
				case req := <-s.queue:
					req.reply <- appendResult{err: eventstore.ErrClosed}
				default:
					return
				}
			}
		}
	}
}

// linger bounds how long a batch waits for more writers.
const linger = 200 * time.Microsecond

// gather adds queued appends to batch. The writers answered by the previous
// commit need a moment to be scheduled and send their next append; without
// waiting, the committer would start a batch with the first of them and
// leave the others for the next fsync, halving the batch size. So when the
// previous batch had several appends, gather waits (at most linger) until
// as many are queued. A lone writer never waits.
func (s *Store) gather(batch []*appendReq, last int, timer *time.Timer) []*appendReq {
	for len(batch) < maxBatch {
		select {
		case req := <-s.queue:
			batch = append(batch, req)
			continue
		default:
		}
		if len(batch) >= last {
			return batch
		}
		timer.Reset(linger)
		select {
		case req := <-s.queue:
			batch = append(batch, req)
			timer.Stop()
		case <-timer.C:
			return batch
		case <-s.done:
			timer.Stop()
			return batch
		}
	}
	return batch
}

// indexEntry is a stream-index entry not yet written to the streams bucket.
type indexEntry struct {
	stream   string
	version  uint64
	position uint64
}

// commit applies one batch. Each append checks its expected version
// against the stream head as left by the earlier appends of the same batch;
// a conflict fails only that append.
//
// The transaction writes only the events bucket: consecutive keys, so a
// batch dirties a few pages whatever the number of streams. The stream
// index and heads are derived data; they are updated in memory here and
// written to their buckets by flush, every flushEvery events and at Close
// (and rebuilt from the events at Open after a crash). Writing them in
// every commit dirtied one index page per stream of the batch, ten times
// the I/O of the events themselves.
func (s *Store) commit(batch []*appendReq) {
	results := make([]appendResult, len(batch))
	next := s.nextPos
	overlay := make(map[string]eventstore.StreamHead)
	var entries []indexEntry
	// head reads the committer's view: this batch's overlay, then s.heads
	// (written only by this goroutine, so it reads it without the lock).
	head := func(stream string) eventstore.StreamHead {
		if h, ok := overlay[stream]; ok {
			return h
		}
		return s.heads[stream]
	}
	// protect: a damaged page makes bbolt panic on this goroutine, which
	// would end the process; it fails the batch instead.
	err := protect(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			events := tx.Bucket(bucketEvents)
			events.FillPercent = 1 // keys only ever grow: pack pages full
			entries = entries[:0]
			clear(overlay)
			next = s.nextPos
			for i, req := range batch {
				results[i] = appendResult{}
				if err := req.ctx.Err(); err != nil {
					results[i].err = err
					continue
				}
				if req.recs != nil {
					n, err := applyImport(req.recs, next, head, overlay, &entries, events)
					if err != nil && !errors.Is(err, eventstore.ErrConflict) && !errors.Is(err, eventstore.ErrChainBroken) {
						return err
					}
					results[i].err = err
					next += n
					continue
				}
				h := head(req.stream)
				if err := eventstore.CheckExpected(req.stream, req.expected, h.Version); err != nil {
					results[i].err = err
					continue
				}
				if len(req.evs) == 0 {
					results[i].version = h.Version
					continue
				}
				for _, ev := range req.evs {
					r := eventstore.Record{EventData: ev, Stream: req.stream, Version: h.Version + 1, Position: next, PrevHash: h.Hash}
					// Bolt keeps references to keys and values until the
					// transaction ends: each gets its own buffer.
					if err := events.Put(posKey(next), encodeRecord(make([]byte, 0, recordSize(&r)), &r)); err != nil {
						return err
					}
					entries = append(entries, indexEntry{stream: req.stream, version: r.Version, position: next})
					h = eventstore.StreamHead{Version: r.Version, Hash: eventstore.HashRecord(&r)}
					next++
				}
				overlay[req.stream] = h
				results[i].version = h.Version
			}
			// The heads of the streams this batch extended, in the same
			// transaction as their records: they commit to the newest
			// record of each stream, which no successor's PrevHash covers.
			hb := tx.Bucket(bucketHeads)
			for stream, h := range overlay {
				if err := hb.Put([]byte(stream), headValue(h)); err != nil {
					return err
				}
			}
			return nil
		})
	})
	err = noSpace(err)
	if next != s.nextPos || err != nil {
		s.setWriteErr(err)
	}
	if err != nil {
		err = fmt.Errorf("boltstore: commit: %w", err)
		for i := range results {
			results[i] = appendResult{err: err}
		}
	} else if next != s.nextPos {
		s.mu.Lock()
		for stream, h := range overlay {
			s.heads[stream] = h
		}
		s.pending = append(s.pending, entries...)
		s.mu.Unlock()
		s.nextPos = next
		s.writeSidecar(next - 1)
		s.head.Publish(next - 1)
	}
	s.commits.Add(1)
	s.batched.Add(uint64(len(batch)))
	for i, req := range batch {
		req.reply <- results[i]
	}
	if len(s.pending) >= flushEvery {
		// A failed flush keeps the entries pending for the next one; the
		// events themselves are safe.
		_ = s.flush()
	}
}

// flushEvery is the number of pending index entries that triggers a flush.
const flushEvery = 4096

// flush writes the pending stream-index entries and the heads of their
// streams, and records the position the buckets are complete through. It
// runs on the committer (or at Open and Close, when there is none) and
// holds s.mu so readers see either the pending entries or the written ones.
func (s *Store) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		return nil
	}
	err := protect(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			return writeIndex(tx, s.pending)
		})
	})
	if err != nil {
		return fmt.Errorf("boltstore: flush index: %w", noSpace(err))
	}
	s.pending = s.pending[:0]
	return nil
}

// writeIndex puts index entries and the indexed-through position. (The
// heads were written by the commits of the entries.)
func writeIndex(tx *bolt.Tx, entries []indexEntry) error {
	index := tx.Bucket(bucketStreams)
	for _, e := range entries {
		if err := index.Put(indexKey(e.stream, e.version), posKey(e.position)); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketMeta).Put(keyIndexed, posKey(entries[len(entries)-1].position))
}

// Import implements eventstore.Importer: recs (of any streams, in order)
// are appended in one transaction, each at exactly its version and only if
// it chains onto its stream as in the source. Nothing is written if any
// record does not fit.
func (s *Store) Import(ctx context.Context, recs []eventstore.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range recs {
		if err := eventstore.ValidateAppend(recs[i].Stream, eventstore.Any, []eventstore.EventData{recs[i].EventData}); err != nil {
			return err
		}
	}
	if len(recs) == 0 {
		return nil
	}
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	if s.readOnly {
		return eventstore.ErrReadOnly
	}
	req := &appendReq{ctx: ctx, recs: recs, reply: make(chan appendResult, 1)}
	select {
	case s.queue <- req:
	case <-s.done:
		return eventstore.ErrClosed
	}
	select {
	case r := <-req.reply:
		return r.err
	case <-s.exited:
		select {
		case r := <-req.reply:
			return r.err
		default:
			return eventstore.ErrClosed
		}
	}
}

// applyImport checks every record of an import against the stream heads
// (as left by earlier requests of the batch) before writing any, then
// writes them from position next. It returns how many positions it used.
func applyImport(recs []eventstore.Record, next uint64, head func(string) eventstore.StreamHead,
	overlay map[string]eventstore.StreamHead, entries *[]indexEntry, events *bolt.Bucket) (uint64, error) {
	local := make(map[string]eventstore.StreamHead)
	for i := range recs {
		r := &recs[i]
		h, ok := local[r.Stream]
		if !ok {
			h = head(r.Stream)
		}
		if r.Version != h.Version+1 {
			return 0, &eventstore.ConflictError{Stream: r.Stream, Expected: int64(r.Version - 1), Actual: h.Version}
		}
		if r.PrevHash != h.Hash {
			return 0, &eventstore.ChainError{Stream: r.Stream, Version: r.Version, Position: r.Position,
				Reason: "imported record does not chain onto the destination stream"}
		}
		local[r.Stream] = eventstore.StreamHead{Version: r.Version, Hash: eventstore.HashRecord(r)}
	}
	for i := range recs {
		r := eventstore.Record{EventData: recs[i].EventData, Stream: recs[i].Stream, Version: recs[i].Version,
			Position: next + uint64(i), PrevHash: recs[i].PrevHash}
		if err := events.Put(posKey(r.Position), encodeRecord(make([]byte, 0, recordSize(&r)), &r)); err != nil {
			return 0, err
		}
		*entries = append(*entries, indexEntry{stream: r.Stream, version: r.Version, position: r.Position})
	}
	for stream, h := range local {
		overlay[stream] = h
	}
	return uint64(len(recs)), nil
}

// view runs a read transaction, mapping a closed database to ErrClosed.
func (s *Store) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	err := protect(func() error { return s.db.View(fn) })
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return eventstore.ErrClosed
	}
	return err
}

// ReadStream implements eventstore.Store: the stream index (written by
// flush) and then the pending entries give the positions.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64) ([]eventstore.Record, error) {
	if from == 0 {
		from = 1
	}
	var out []eventstore.Record
	s.mu.RLock()
	defer s.mu.RUnlock()
	err := s.view(ctx, func(tx *bolt.Tx) error {
		events := tx.Bucket(bucketEvents)
		prefix := streamPrefix(stream)
		c := tx.Bucket(bucketStreams).Cursor()
		var vals [][]byte
		var poss []uint64
		add := func(k []byte) error {
			v := events.Get(k)
			if v == nil {
				return fmt.Errorf("%w: index points to missing position %d", errCorrupt, binary.BigEndian.Uint64(k))
			}
			vals = append(vals, v)
			poss = append(poss, binary.BigEndian.Uint64(k))
			return nil
		}
		for k, v := c.Seek(indexKey(stream, from)); k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8; k, v = c.Next() {
			if len(v) != 8 {
				return fmt.Errorf("%w: index entry of %d bytes", errCorrupt, len(v))
			}
			if err := add(v); err != nil {
				return err
			}
		}
		for _, e := range s.pending {
			if e.stream == stream && e.version >= from {
				if err := add(posKey(e.position)); err != nil {
					return err
				}
			}
		}
		var err error
		out, err = decodePage(vals, poss)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: read stream: %w", err)
	}
	return out, nil
}

// ReadAll implements eventstore.Store.
func (s *Store) ReadAll(ctx context.Context, from uint64, limit int) ([]eventstore.Record, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("boltstore: read all: limit %d must be positive", limit)
	}
	if from == 0 {
		from = 1
	}
	var out []eventstore.Record
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		vals := make([][]byte, 0, min(limit, 4096))
		poss := make([]uint64, 0, min(limit, 4096))
		for k, v := c.Seek(posKey(from)); k != nil && len(vals) < limit; k, v = c.Next() {
			if len(k) != 8 {
				return fmt.Errorf("%w: event key of %d bytes", errCorrupt, len(k))
			}
			vals = append(vals, v)
			poss = append(poss, binary.BigEndian.Uint64(k))
		}
		var err error
		out, err = decodePage(vals, poss)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: read all: %w", err)
	}
	return out, nil
}

// decodePage copies the values (valid only inside the transaction) into
// one buffer and decodes records that point into it.
func decodePage(vals [][]byte, poss []uint64) ([]eventstore.Record, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	total := 0
	for _, v := range vals {
		total += len(v)
	}
	buf := make([]byte, 0, total)
	out := make([]eventstore.Record, len(vals))
	for i, v := range vals {
		start := len(buf)
		buf = append(buf, v...)
		if err := decodeRecord(buf[start:len(buf):len(buf)], poss[i], &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Subscribe implements eventstore.Store.
func (s *Store) Subscribe(ctx context.Context, from uint64, fn func(eventstore.Record) error) error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	return notify.Subscribe(ctx, s.head, s.ReadAll, from, fn)
}

// StreamHeads implements eventstore.HeadStore: the heads as the appends
// recorded them (flushed to the heads bucket, read back at Open).
func (s *Store) StreamHeads(ctx context.Context) (map[string]eventstore.StreamHead, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]eventstore.StreamHead, len(s.heads))
	for k, v := range s.heads {
		out[k] = v
	}
	return out, nil
}

// LoadKeyring implements eventstore.KeyringStorage.
func (s *Store) LoadKeyring(ctx context.Context) ([]byte, error) {
	var out []byte
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketKeyring).Get(keyKeyring)
		if v == nil {
			return eventstore.ErrNoKeyring
		}
		out = append([]byte(nil), v...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: load keyring: %w", err)
	}
	return out, nil
}

// SaveKeyring implements eventstore.KeyringStorage. The keyring lives in its
// own bucket of the same file and is replaced in one fsynced transaction.
func (s *Store) SaveKeyring(ctx context.Context, keyring []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	if s.readOnly {
		return eventstore.ErrReadOnly
	}
	v := append([]byte(nil), keyring...)
	err := protect(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketKeyring).Put(keyKeyring, v)
		})
	})
	err = noSpace(err)
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		err = eventstore.ErrClosed
	}
	if err != nil {
		return fmt.Errorf("boltstore: save keyring: %w", err)
	}
	return nil
}

// Close stops the committer (queued appends fail with ErrClosed), ends the
// subscriptions and closes the file, leaving the clean-close marker that
// spares the next Open the walk of every page. Later calls return
// ErrClosed.
//
// Close needs no free space: the pending stream-index entries are flushed
// when possible, and a flush that fails for want of space is dropped (Open
// lists them again from the records; the heads are already committed).
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return eventstore.ErrClosed
	}
	if !s.readOnly {
		close(s.done)
	}
	<-s.exited
	s.head.Close()
	var ferr error
	if !s.readOnly {
		// The last commit writes the freelist, so that the next Open
		// reads it instead of rebuilding it from every page. No writer is
		// left: the field is read by commits only. A session that wrote
		// nothing leaves the file as it found it, byte for byte (a start
		// refused on a damaged log must not touch the evidence).
		wrote := s.txid() != s.openTxid
		s.mu.RLock()
		pending := len(s.pending) > 0
		s.mu.RUnlock()
		s.db.NoFreelistSync = false
		if ferr = s.flush(); errors.Is(ferr, eventstore.ErrNoSpace) {
			ferr = nil
		}
		if ferr == nil && wrote && !pending {
			// Nothing to flush commits nothing: an empty commit writes the
			// freelist (without space it fails, and the next Open rebuilds
			// the freelist and walks the pages, as after a crash).
			_ = protect(func() error { return s.db.Update(func(*bolt.Tx) error { return nil }) })
		}
	}
	if s.side != nil {
		_ = s.side.Close()
	}
	if !s.readOnly && ferr == nil {
		// Nothing writes to the file any more, and the lock is still held:
		// no other process can change it before the marker describes it.
		markClean(s.path)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltstore: close: %w", err)
	}
	return ferr
}
