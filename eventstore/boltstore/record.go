package boltstore

import (
	"encoding/binary"
	"fmt"
	"time"
	"unsafe"

	"github.com/e4c2/e4c2/eventstore"
)

const recordFormat = 1

// errCorrupt: a stored value does not decode. It never carries the bytes.
// It is an eventstore.ErrDamaged (errors.Is), so every caller reports a
// damaged store the same way.
var errCorrupt error = corruptError{}

type corruptError struct{}

func (corruptError) Error() string { return "boltstore: corrupt record" }

// Is makes errors.Is(err, eventstore.ErrDamaged) hold.
func (corruptError) Is(target error) bool { return target == eventstore.ErrDamaged }

// encodeRecord appends the format-1 encoding of r (without its position).
func encodeRecord(dst []byte, r *eventstore.Record) []byte {
	dst = append(dst, recordFormat)
	dst = appendString(dst, r.Stream)
	dst = binary.AppendUvarint(dst, r.Version)
	dst = appendString(dst, r.ID)
	dst = appendString(dst, r.Type)
	if r.Meta.Time.IsZero() {
		dst = append(dst, 0)
	} else {
		dst = append(dst, 1)
		dst = binary.BigEndian.AppendUint64(dst, uint64(r.Meta.Time.Unix()))
		dst = binary.BigEndian.AppendUint32(dst, uint32(r.Meta.Time.Nanosecond()))
	}
	dst = appendString(dst, r.Meta.Actor)
	dst = appendString(dst, r.Meta.CausationID)
	dst = appendString(dst, r.Meta.CorrelationID)
	dst = appendString(dst, r.Meta.Suite)
	dst = appendString(dst, r.Meta.Mode)
	dst = append(dst, r.PrevHash[:]...)
	dst = binary.AppendUvarint(dst, uint64(len(r.Data)))
	return append(dst, r.Data...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// recordSize is an upper bound of the encoding size, to size buffers.
func recordSize(r *eventstore.Record) int {
	return 1 + 6*binary.MaxVarintLen64 + 13 + 32 + len(r.Stream) + len(r.ID) + len(r.Type) +
		len(r.Meta.Actor) + len(r.Meta.CausationID) + len(r.Meta.CorrelationID) +
		len(r.Meta.Suite) + len(r.Meta.Mode) + len(r.Data) + 4*binary.MaxVarintLen64
}

// decoder reads a value that the caller owns and never changes afterwards:
// strings and data point into it without copying.
type decoder struct {
	b   []byte
	off int
	bad bool
}

func (d *decoder) uvarint() uint64 {
	if d.bad {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if d.bad || n > uint64(len(d.b)-d.off) {
		d.bad = true
		return nil
	}
	s := d.b[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return s
}

func (d *decoder) string() string {
	b := d.bytes(d.uvarint())
	if len(b) == 0 {
		return ""
	}
	// The buffer is owned by the decoded page and never written again, so
	// the string may share it.
	return unsafe.String(&b[0], len(b))
}

// decodeRecord decodes v (which the caller owns and never changes) into r.
func decodeRecord(v []byte, pos uint64, r *eventstore.Record) error {
	if len(v) == 0 || v[0] != recordFormat {
		return fmt.Errorf("%w at position %d: unknown format", errCorrupt, pos)
	}
	d := decoder{b: v, off: 1}
	r.Position = pos
	r.Stream = d.string()
	r.Version = d.uvarint()
	r.ID = d.string()
	r.Type = d.string()
	switch flag := d.bytes(1); {
	case d.bad:
	case flag[0] == 0:
		r.Meta.Time = time.Time{}
	case flag[0] == 1:
		t := d.bytes(12)
		if !d.bad {
			r.Meta.Time = time.Unix(int64(binary.BigEndian.Uint64(t)), int64(binary.BigEndian.Uint32(t[8:]))).UTC()
		}
	default:
		d.bad = true
	}
	r.Meta.Actor = d.string()
	r.Meta.CausationID = d.string()
	r.Meta.CorrelationID = d.string()
	r.Meta.Suite = d.string()
	r.Meta.Mode = d.string()
	copy(r.PrevHash[:], d.bytes(32))
	data := d.bytes(d.uvarint())
	if len(data) > 0 {
		r.Data = data
	} else {
		r.Data = nil
	}
	if d.bad || d.off != len(v) {
		return fmt.Errorf("%w at position %d", errCorrupt, pos)
	}
	return nil
}

// headValue encodes a stream head.
func headValue(h eventstore.StreamHead) []byte {
	b := make([]byte, 40)
	binary.BigEndian.PutUint64(b, h.Version)
	copy(b[8:], h.Hash[:])
	return b
}

func decodeHead(v []byte) (eventstore.StreamHead, error) {
	var h eventstore.StreamHead
	if len(v) != 40 {
		return h, fmt.Errorf("%w: stream head of %d bytes", errCorrupt, len(v))
	}
	h.Version = binary.BigEndian.Uint64(v)
	copy(h.Hash[:], v[8:])
	return h, nil
}

func posKey(pos uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, pos)
	return b
}

// streamPrefix is the index key prefix of a stream; the length prefix
// keeps "ab" from being a prefix of "abc".
func streamPrefix(stream string) []byte {
	b := binary.AppendUvarint(make([]byte, 0, len(stream)+binary.MaxVarintLen64+8), uint64(len(stream)))
	return append(b, stream...)
}

func indexKey(stream string, version uint64) []byte {
	return binary.BigEndian.AppendUint64(streamPrefix(stream), version)
}
