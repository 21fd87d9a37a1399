package projections

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/sealing"
)

// Snapshot files. A start that replays 10 M events takes minutes; one that
// loads the key state as of a recent position and replays only the tail
// takes a second. A snapshot is a cache, never a source of truth: the log
// is. So a snapshot is used only when everything about it checks out, and
// any doubt (it does not decode, its hash does not match, it names a record
// this log does not have) means it is ignored and the log replayed.
//
// Layout of keystate-<position>.snap (all integers big-endian):
//
//	"E4C2SNAP" | u32 format | u64 position | u16 len | last event id
//	| u16 len | sealed digest | u64 len | state image
//
// The digest is SHA-256 over everything but itself (magic, format,
// position, event id, image). It is sealed with the keyring (AES-GCM, bound
// to the position): the snapshot bypasses the log's hash chains, so a plain
// hash would let whoever can write the data directory plant a state (a
// token of theirs) that the chains never see. Sealed, only a holder of the
// master key can make one. The image holds keys sealed, as the log does.

var snapMagic = []byte("E4C2SNAP")

const snapFormat = 1

// DefaultSnapshotKeep is how many snapshot files a SnapshotDir keeps: the
// newest and the one before, in case the newest is damaged.
const DefaultSnapshotKeep = 2

// SnapshotDir keeps key-state snapshots in a directory (created 0700,
// files 0600).
type SnapshotDir struct {
	Dir    string
	Sealer sealing.Sealer
	// Keep is how many files to keep (default DefaultSnapshotKeep).
	Keep int
}

// SnapshotInfo describes a snapshot written or loaded.
type SnapshotInfo struct {
	Path     string
	Position uint64
	EventID  string
	Size     int
	Digest   [32]byte
}

func snapAD(pos uint64) []byte {
	return []byte("e4c2 keystate snapshot " + strconv.FormatUint(pos, 10))
}

func snapDigest(pos uint64, id string, image []byte) [32]byte {
	h := sha256.New()
	h.Write(snapMagic)
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], snapFormat)
	binary.BigEndian.PutUint64(b[4:], pos)
	h.Write(b[:])
	h.Write([]byte(id))
	h.Write(image)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// Save writes a snapshot of ks (atomically: temporary file, fsync,
// rename) and removes the older ones beyond Keep. A state at position 0
// (an empty log) is not worth a file and is skipped.
func (d SnapshotDir) Save(ks *KeyState) (SnapshotInfo, error) {
	if d.Sealer == nil {
		return SnapshotInfo{}, errors.New("projections: snapshot: no sealer")
	}
	image, pos, id, err := ks.encode()
	if err != nil {
		return SnapshotInfo{}, err
	}
	if pos == 0 {
		return SnapshotInfo{}, nil
	}
	if len(id) > 0xffff {
		return SnapshotInfo{}, errors.New("projections: snapshot: event id too long")
	}
	digest := snapDigest(pos, id, image)
	sealed, err := d.Sealer.Seal(digest[:], snapAD(pos))
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("projections: snapshot: seal digest: %w", err)
	}
	var hdr bytes.Buffer
	hdr.Write(snapMagic)
	hdr.Write(binary.BigEndian.AppendUint32(nil, snapFormat))
	hdr.Write(binary.BigEndian.AppendUint64(nil, pos))
	hdr.Write(binary.BigEndian.AppendUint16(nil, uint16(len(id))))
	hdr.WriteString(id)
	hdr.Write(binary.BigEndian.AppendUint16(nil, uint16(len(sealed))))
	hdr.Write(sealed)
	hdr.Write(binary.BigEndian.AppendUint64(nil, uint64(len(image))))

	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return SnapshotInfo{}, fmt.Errorf("projections: snapshot: %w", err)
	}
	path := filepath.Join(d.Dir, fmt.Sprintf("keystate-%020d.snap", pos))
	tmp, err := os.CreateTemp(d.Dir, ".keystate-*.tmp") // 0600
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("projections: snapshot: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(hdr.Bytes())
	if err == nil {
		_, err = tmp.Write(image)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("projections: snapshot: %w", err)
	}
	if dir, err := os.Open(d.Dir); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	d.prune()
	return SnapshotInfo{Path: path, Position: pos, EventID: id, Size: hdr.Len() + len(image), Digest: digest}, nil
}

// list returns the snapshot files, newest first.
func (d SnapshotDir) list() []string {
	names, _ := filepath.Glob(filepath.Join(d.Dir, "keystate-*.snap"))
	slices.Sort(names)
	slices.Reverse(names)
	return names
}

func (d SnapshotDir) prune() {
	keep := d.Keep
	if keep <= 0 {
		keep = DefaultSnapshotKeep
	}
	for i, n := range d.list() {
		if i >= keep {
			_ = os.Remove(n)
		}
	}
}

// ErrNoSnapshot is returned by LoadNewest when no snapshot can be used.
var ErrNoSnapshot = errors.New("projections: no usable snapshot")

// LoadNewest returns the newest snapshot that checks out: it decodes, its
// sealed digest opens and matches, and store holds the record it names at
// its position. Each snapshot that fails is reported to warn (with why;
// never any content) and skipped. With none left it returns
// ErrNoSnapshot: the caller replays the log.
func (d SnapshotDir) LoadNewest(ctx context.Context, store eventstore.Store, warn func(path string, err error)) (*KeyState, SnapshotInfo, error) {
	if d.Sealer == nil {
		return nil, SnapshotInfo{}, ErrNoSnapshot
	}
	for _, path := range d.list() {
		ks, info, err := d.load(ctx, path, store)
		if err == nil {
			return ks, info, nil
		}
		if ctx.Err() != nil {
			return nil, SnapshotInfo{}, ctx.Err()
		}
		if warn != nil {
			warn(path, err)
		}
	}
	return nil, SnapshotInfo{}, ErrNoSnapshot
}

func (d SnapshotDir) load(ctx context.Context, path string, store eventstore.Store) (*KeyState, SnapshotInfo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, SnapshotInfo{}, err
	}
	rd := snapReader{b: b}
	if !bytes.Equal(rd.next(len(snapMagic)), snapMagic) {
		return nil, SnapshotInfo{}, errors.New("not a snapshot file")
	}
	if f := rd.u32(); f != snapFormat {
		return nil, SnapshotInfo{}, fmt.Errorf("snapshot format %d, want %d", f, snapFormat)
	}
	pos := rd.u64()
	id := string(rd.next(int(rd.u16())))
	sealed := rd.next(int(rd.u16()))
	n := rd.u64()
	if rd.bad || n != uint64(len(rd.b)) {
		return nil, SnapshotInfo{}, errors.New("truncated or malformed snapshot")
	}
	image := rd.b
	want, err := d.Sealer.Open(sealed, snapAD(pos))
	if err != nil {
		return nil, SnapshotInfo{}, fmt.Errorf("snapshot digest does not open (another master key, or altered): %w", err)
	}
	got := snapDigest(pos, id, image)
	if len(want) != len(got) || subtle.ConstantTimeCompare(want, got[:]) != 1 {
		return nil, SnapshotInfo{}, errors.New("snapshot hash mismatch")
	}
	recs, err := store.ReadAll(ctx, pos, 1)
	if err != nil {
		return nil, SnapshotInfo{}, fmt.Errorf("read the record the snapshot names: %w", err)
	}
	if len(recs) == 0 || recs[0].Position != pos || recs[0].ID != id {
		return nil, SnapshotInfo{}, fmt.Errorf("the log has no record %s at position %d (another or a shorter log)", id, pos)
	}
	ks, err := DecodeKeyState(image)
	if err != nil {
		return nil, SnapshotInfo{}, err
	}
	if ks.pos != pos || ks.lastID != id {
		return nil, SnapshotInfo{}, errors.New("snapshot header and state disagree")
	}
	return ks, SnapshotInfo{Path: path, Position: pos, EventID: id, Size: len(b), Digest: got}, nil
}

type snapReader struct {
	b   []byte
	bad bool
}

func (r *snapReader) next(n int) []byte {
	if r.bad || n > len(r.b) {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *snapReader) u16() uint16 {
	if v := r.next(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *snapReader) u32() uint32 {
	if v := r.next(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *snapReader) u64() uint64 {
	if v := r.next(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// Resume starts an audit trail at pos (records up to pos are not in it)
// with the topic names the log defined by then: an audit resumed with a
// key-state snapshot replays only its window of the log.
func (a *Audit) Resume(pos uint64, names map[domain.ID]string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pos = pos
	for h, n := range names {
		a.names[h] = n
	}
}

// Prepend adds entries older than every entry held (an audit resumed from
// a snapshot fills its window from the log behind the live tail), then
// trims to the limit like Apply.
func (a *Audit) Prepend(older []AuditEntry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.entries) > 0 {
		first := a.entries[0].Position
		for len(older) > 0 && older[len(older)-1].Position >= first {
			older = older[:len(older)-1]
		}
	}
	all := make([]AuditEntry, 0, len(older)+len(a.entries))
	all = append(append(all, older...), a.entries...)
	if a.max > 0 && len(all) > a.max {
		all = all[len(all)-a.max:]
	}
	a.entries = all
}

// Entries returns every entry held, oldest first (tests, fills).
func (a *Audit) Entries() []AuditEntry {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return slices.Clone(a.entries)
}
