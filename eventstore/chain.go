package eventstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// hashDomain separates record hashes from any other SHA-256 use, and names
// the encoding version so a future change of the encoding cannot collide.
const hashDomain = "e4c2/eventstore/record/v1"

// HashRecord returns the chain hash of r: SHA-256 over an unambiguous,
// length-prefixed encoding of the stream, version, event id, type, every
// metadata field, the data and PrevHash.
//
// The global Position is deliberately left out: it belongs to the log, not
// to the stream, and an export/import (Copy) into a store that already holds
// events must keep every stream chain valid.
func HashRecord(r *Record) [32]byte {
	// One contiguous buffer (on the stack for small records) hashed in a
	// single call: the committer hashes every appended record.
	var stack [512]byte
	b := stack[:0]
	b = appendField(b, hashDomain)
	b = appendField(b, r.Stream)
	b = binary.BigEndian.AppendUint64(b, r.Version)
	b = appendField(b, r.ID)
	b = appendField(b, r.Type)
	// The time as a presence flag, Unix seconds and nanoseconds: the same
	// instant always hashes the same whatever its location, and the zero
	// time is distinct from the Unix epoch.
	if r.Meta.Time.IsZero() {
		b = append(b, make([]byte, 13)...)
	} else {
		b = append(b, 1)
		b = binary.BigEndian.AppendUint64(b, uint64(r.Meta.Time.Unix()))
		b = binary.BigEndian.AppendUint32(b, uint32(r.Meta.Time.Nanosecond()))
	}
	b = appendField(b, r.Meta.Actor)
	b = appendField(b, r.Meta.CausationID)
	b = appendField(b, r.Meta.CorrelationID)
	b = appendField(b, r.Meta.Suite)
	b = appendField(b, r.Meta.Mode)
	b = appendField(b, r.Data)
	b = append(b, r.PrevHash[:]...)
	return sha256.Sum256(b)
}

// appendField appends an 8-byte big-endian length and the bytes.
func appendField[T string | []byte](b []byte, v T) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(v)))
	return append(b, v...)
}

// ErrChainBroken: a record does not match the hash chain of its stream, or
// the log has a gap. Verify returns it wrapped in a *ChainError.
var ErrChainBroken = errors.New("eventstore: hash chain broken")

// ChainError names the first (lowest global position) record that does not
// fit its stream's hash chain.
type ChainError struct {
	Stream   string
	Version  uint64
	Position uint64
	// Reason says what does not match, for an operator (no event data).
	Reason string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("eventstore: hash chain broken at stream %q version %d (position %d): %s",
		e.Stream, e.Version, e.Position, e.Reason)
}

// Unwrap makes errors.Is(err, ErrChainBroken) work.
func (e *ChainError) Unwrap() error { return ErrChainBroken }

// StreamHead is the tip of one stream as the backend recorded it at append.
type StreamHead struct {
	Version uint64
	Hash    [32]byte
}

// HeadStore is implemented by backends that keep the hash of each stream's
// last record. Verify then also checks the last record of every stream,
// which no successor's PrevHash covers.
type HeadStore interface {
	StreamHeads(ctx context.Context) (map[string]StreamHead, error)
}

// VerifyReport summarises a successful Verify.
type VerifyReport struct {
	Records      uint64 // records checked
	Streams      int    // distinct streams
	LastPosition uint64 // position of the last record (0 for an empty log)
}

// verifyPage is the ReadAll page size of Verify.
const verifyPage = 4096

// Verify walks the whole log in global order and recomputes every stream's
// hash chain. It checks that positions run 1..N without gap, that each
// stream's versions run 1..n, that every PrevHash is the hash of the
// stream's previous record (zero for the first) and, when s is a HeadStore,
// that each stream's recorded head hash matches its last record.
//
// A record whose content was altered no longer hashes to the value its
// successor (or the stream head) committed to, so Verify names the altered
// record itself. When several records are broken, the one with the lowest
// position is returned, as a *ChainError wrapping ErrChainBroken.
// progress, if not nil, is called with the number of records checked after
// every page.
func Verify(ctx context.Context, s Store, progress func(n uint64)) (*VerifyReport, error) {
	type tip struct {
		version  uint64
		position uint64
		hash     [32]byte
	}
	tips := make(map[string]*tip)
	var first *ChainError
	report := func(stream string, version, position uint64, reason string) {
		if first == nil || position < first.Position {
			first = &ChainError{Stream: stream, Version: version, Position: position, Reason: reason}
		}
	}
	rep := &VerifyReport{}
	next := uint64(1)
	for {
		page, err := s.ReadAll(ctx, next, verifyPage)
		if err != nil {
			return nil, fmt.Errorf("eventstore: verify: %w", err)
		}
		for i := range page {
			r := &page[i]
			if r.Position != next {
				report(r.Stream, r.Version, r.Position,
					fmt.Sprintf("position gap: expected position %d", next))
			}
			next = r.Position + 1
			t := tips[r.Stream]
			if t == nil {
				t = &tip{}
				tips[r.Stream] = t
			}
			switch {
			case r.Version != t.version+1:
				report(r.Stream, r.Version, r.Position,
					fmt.Sprintf("version gap: expected version %d", t.version+1))
			case r.PrevHash != t.hash:
				if t.version == 0 {
					report(r.Stream, r.Version, r.Position, "first record of the stream has a non-zero previous hash")
				} else {
					// The predecessor no longer hashes to what this record
					// committed to: the predecessor was altered (or this
					// link was).
					report(r.Stream, t.version, t.position,
						fmt.Sprintf("record does not match the hash committed by version %d", r.Version))
				}
			}
			t.version, t.position, t.hash = r.Version, r.Position, HashRecord(r)
			rep.Records++
			rep.LastPosition = r.Position
		}
		if progress != nil && len(page) > 0 {
			progress(rep.Records)
		}
		if len(page) < verifyPage {
			break
		}
	}
	if hs, ok := s.(HeadStore); ok {
		heads, err := hs.StreamHeads(ctx)
		if err != nil {
			return nil, fmt.Errorf("eventstore: verify: %w", err)
		}
		for stream, t := range tips {
			h, ok := heads[stream]
			switch {
			case !ok:
				report(stream, t.version, t.position, "stream has no recorded head")
			case h.Version != t.version:
				report(stream, t.version, t.position,
					fmt.Sprintf("recorded head is version %d", h.Version))
			case h.Hash != t.hash:
				report(stream, t.version, t.position, "record does not match the recorded stream head hash")
			}
		}
		for stream, h := range heads {
			if _, ok := tips[stream]; !ok {
				report(stream, h.Version, rep.LastPosition+1, "recorded head of a stream with no record")
			}
		}
	}
	rep.Streams = len(tips)
	if first != nil {
		return nil, first
	}
	return rep, nil
}
