package eventcodec

import (
	"encoding/binary"
	"fmt"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore/sealing"
	"github.com/e4c2/e4c2/suites/core"
)

// formatV1 is the first byte of every encoded event. A decoder refuses any
// other value instead of guessing.
const formatV1 = 1

// maxSecret bounds a sealed field, maxBlob a public key, name or reason:
// domain's bounds, which Decide enforces, so that every decided event can be
// stored and read back.
const (
	maxSecret = domain.MaxSecretLen
	maxBlob   = domain.MaxBlobLen
)

// Encode returns the binary form of ev as it will be stored at
// (stream, version): secrets in clear are sealed with s under
// sealing.SealAD(stream, version, wire name). Secrets already sealed are
// written as they are (they must have been sealed for the same record).
func Encode(ev domain.Event, stream string, version uint64, s sealing.Sealer) ([]byte, error) {
	t := ev.EventType()
	name := t.WireName()
	if name == "" {
		return nil, fmt.Errorf("eventcodec: encode: %w", domain.ErrUnknownEvent)
	}
	seal := func(sec domain.Secret) ([]byte, error) {
		return sec.SealWith(func(plain []byte) ([]byte, error) {
			if s == nil {
				return nil, fmt.Errorf("eventcodec: encode %s: no sealer for key material", name)
			}
			out, err := s.Seal(plain, sealing.SealAD(stream, version, name))
			if err != nil {
				return nil, fmt.Errorf("eventcodec: encode %s: seal: %w", name, err)
			}
			return out, nil
		})
	}
	b := make([]byte, 1, 64)
	b[0] = formatV1
	switch e := ev.(type) {
	case *domain.ClientRegistered:
		k, err := seal(e.Key)
		if err != nil {
			return nil, err
		}
		b = append(b, e.Client[:]...)
		b = append(b, byte(e.Role))
		b = putBytes(b, []byte(e.Name))
		b = putBytes(b, k)
		b = putBytes(b, e.PublicKey)
	case *domain.ClientRemoved:
		b = append(b, e.Client[:]...)
	case *domain.ClientKeyRotated:
		k, err := seal(e.Key)
		if err != nil {
			return nil, err
		}
		b = append(b, e.Client[:]...)
		b = putBytes(b, k)
	case *domain.ClientTopicsReset:
		b = append(b, e.Client[:]...)
	case *domain.TopicCreated:
		k, err := seal(e.Key)
		if err != nil {
			return nil, err
		}
		b = append(b, e.Topic[:]...)
		b = putBytes(b, []byte(e.Name))
		b = putBytes(b, k)
	case *domain.TopicKeyRotated:
		k, err := seal(e.Key)
		if err != nil {
			return nil, err
		}
		b = append(b, e.Topic[:]...)
		b = putBytes(b, k)
	case *domain.TopicRemoved:
		b = append(b, e.Topic[:]...)
	case *domain.TopicClientLinked:
		b = append(b, e.Topic[:]...)
		b = append(b, e.Client[:]...)
	case *domain.TopicClientUnlinked:
		b = append(b, e.Topic[:]...)
		b = append(b, e.Client[:]...)
	case *domain.C2KeyGenerated:
		k, err := seal(e.Private)
		if err != nil {
			return nil, err
		}
		b = putBytes(b, e.Public)
		b = putBytes(b, k)
	case *domain.CommandQueued:
		b = append(b, byte(e.Code))
		b = append(b, e.Topic[:]...)
		b = binary.AppendUvarint(b, e.TopicKeyVersion)
		b = append(b, e.Subject[:]...)
		b = binary.AppendUvarint(b, e.SubjectKeyVersion)
		b = binary.AppendUvarint(b, e.C2KeyVersion)
		b = binary.AppendUvarint(b, e.NewC2KeyVersion)
		b = binary.AppendUvarint(b, uint64(len(e.Recipients)))
		for _, r := range e.Recipients {
			b = append(b, r.Client[:]...)
			b = binary.AppendUvarint(b, r.KeyVersion)
		}
	case *domain.CommandDelivered:
		b = append(b, e.Client[:]...)
		b = append(b, e.Ref.Event[:]...)
		b = binary.AppendUvarint(b, uint64(e.Ref.Index))
	case *domain.CommandConfirmed:
		b = append(b, e.Client[:]...)
		b = append(b, e.Ref.Event[:]...)
		b = binary.AppendUvarint(b, uint64(e.Ref.Index))
	case *domain.DeviceSeen:
		b = append(b, e.Client[:]...)
		var sp byte
		if e.SessionPresent {
			sp = 1
		}
		b = append(b, sp)
	case *domain.DeviceReleased:
		b = append(b, e.Client[:]...)
	case *domain.CommandFailed:
		b = append(b, e.Client[:]...)
		b = append(b, e.Ref.Event[:]...)
		b = binary.AppendUvarint(b, uint64(e.Ref.Index))
		b = putBytes(b, []byte(e.Reason))
	case *domain.TokenCreated:
		b = putBytes(b, []byte(e.Name))
		b = append(b, byte(e.Role))
		b = append(b, e.Hash[:]...)
	case *domain.TokenRevoked:
		b = putBytes(b, []byte(e.Name))
	case *domain.KeyExported:
		b = append(b, e.Client[:]...)
		b = append(b, e.Topic[:]...)
		b = binary.AppendUvarint(b, e.KeyVersion)
	case *domain.KeyUsed:
		b = append(b, e.Topic[:]...)
		b = binary.AppendUvarint(b, e.KeyVersion)
		b = binary.AppendUvarint(b, e.Minute)
		b = binary.AppendUvarint(b, e.Protects)
		b = binary.AppendUvarint(b, e.Unprotects)
		b = binary.AppendUvarint(b, e.Failures)
	case *domain.MonitorFinding:
		b = putBytes(b, []byte(e.Kind))
		b = append(b, e.Topic[:]...)
		b = append(b, e.Client[:]...)
		b = binary.AppendUvarint(b, e.KeyVersion)
		b = binary.AppendUvarint(b, e.WindowStart)
		b = binary.AppendUvarint(b, e.WindowEnd)
		b = binary.AppendUvarint(b, e.Count)
		b = putBytes(b, []byte(e.Detail))
	default:
		return nil, fmt.Errorf("eventcodec: encode %T: %w", ev, domain.ErrUnknownEvent)
	}
	return b, nil
}

func putBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// Decode parses an event of the given wire type. Unknown wire types (for
// example events of other components in the same log) return an error
// wrapping domain.ErrUnknownEvent; malformed bytes one wrapping domain.ErrInvalidEvent.
// Decode never panics and does not unseal anything. The returned event
// does not alias data.
func Decode(wireType string, data []byte) (domain.Event, error) {
	t := domain.TypeOf(wireType)
	if t == domain.TypeUnknown {
		return nil, fmt.Errorf("eventcodec: decode %q: %w", wireType, domain.ErrUnknownEvent)
	}
	return DecodeType(t, data)
}

// DecodeType is Decode for a type already looked up.
func DecodeType(t domain.Type, data []byte) (domain.Event, error) {
	d := decoder{b: data}
	if v := d.byte(); v != formatV1 {
		return nil, fmt.Errorf("eventcodec: decode %s: %w: format version %d", t.WireName(), domain.ErrInvalidEvent, v)
	}
	var ev domain.Event
	switch t {
	case domain.TypeClientRegistered:
		e := &domain.ClientRegistered{}
		d.id(&e.Client)
		e.Role = domain.Role(d.byte())
		e.Name = string(d.bytes(core.MaxNameLen))
		if k := d.bytes(maxSecret); len(k) > 0 {
			e.Key = domain.SealedSecret(clone(k))
		}
		if p := d.bytes(maxBlob); len(p) > 0 {
			e.PublicKey = clone(p)
		}
		ev = e
	case domain.TypeClientRemoved:
		e := &domain.ClientRemoved{}
		d.id(&e.Client)
		ev = e
	case domain.TypeClientKeyRotated:
		e := &domain.ClientKeyRotated{}
		d.id(&e.Client)
		e.Key = domain.SealedSecret(clone(d.bytes(maxSecret)))
		ev = e
	case domain.TypeClientTopicsReset:
		e := &domain.ClientTopicsReset{}
		d.id(&e.Client)
		ev = e
	case domain.TypeTopicCreated:
		e := &domain.TopicCreated{}
		d.id(&e.Topic)
		e.Name = string(d.bytes(core.MaxTopicLen))
		e.Key = domain.SealedSecret(clone(d.bytes(maxSecret)))
		ev = e
	case domain.TypeTopicKeyRotated:
		e := &domain.TopicKeyRotated{}
		d.id(&e.Topic)
		e.Key = domain.SealedSecret(clone(d.bytes(maxSecret)))
		ev = e
	case domain.TypeTopicRemoved:
		e := &domain.TopicRemoved{}
		d.id(&e.Topic)
		ev = e
	case domain.TypeTopicClientLinked:
		e := &domain.TopicClientLinked{}
		d.id(&e.Topic)
		d.id(&e.Client)
		ev = e
	case domain.TypeTopicClientUnlinked:
		e := &domain.TopicClientUnlinked{}
		d.id(&e.Topic)
		d.id(&e.Client)
		ev = e
	case domain.TypeC2KeyGenerated:
		e := &domain.C2KeyGenerated{}
		e.Public = clone(d.bytes(maxBlob))
		e.Private = domain.SealedSecret(clone(d.bytes(maxSecret)))
		ev = e
	case domain.TypeCommandQueued:
		e := &domain.CommandQueued{}
		e.Code = core.CommandCode(d.byte())
		d.id(&e.Topic)
		e.TopicKeyVersion = d.uvarint()
		d.id(&e.Subject)
		e.SubjectKeyVersion = d.uvarint()
		e.C2KeyVersion = d.uvarint()
		e.NewC2KeyVersion = d.uvarint()
		n := d.uvarint()
		// Each recipient takes at least 17 bytes: bound n by what is left
		// before allocating.
		if n > uint64(len(d.b)-d.off)/17 {
			d.fail("recipient count")
		} else if n > 0 {
			e.Recipients = make([]domain.Recipient, n)
			for i := range e.Recipients {
				d.id(&e.Recipients[i].Client)
				e.Recipients[i].KeyVersion = d.uvarint()
			}
		}
		if d.err == nil && !e.Code.Known() {
			d.fail("command code")
		}
		ev = e
	case domain.TypeCommandDelivered:
		e := &domain.CommandDelivered{}
		d.id(&e.Client)
		d.id(&e.Ref.Event)
		e.Ref.Index = d.uint32()
		ev = e
	case domain.TypeCommandConfirmed:
		e := &domain.CommandConfirmed{}
		d.id(&e.Client)
		d.id(&e.Ref.Event)
		e.Ref.Index = d.uint32()
		ev = e
	case domain.TypeDeviceReleased:
		e := &domain.DeviceReleased{}
		d.id(&e.Client)
		ev = e
	case domain.TypeDeviceSeen:
		e := &domain.DeviceSeen{}
		d.id(&e.Client)
		switch d.byte() {
		case 0:
		case 1:
			e.SessionPresent = true
		default:
			d.fail("session present flag")
		}
		ev = e
	case domain.TypeCommandFailed:
		e := &domain.CommandFailed{}
		d.id(&e.Client)
		d.id(&e.Ref.Event)
		e.Ref.Index = d.uint32()
		e.Reason = string(d.bytes(maxBlob))
		ev = e
	case domain.TypeTokenCreated:
		e := &domain.TokenCreated{}
		e.Name = string(d.bytes(core.MaxNameLen))
		e.Role = domain.TokenRole(d.byte())
		d.read(e.Hash[:])
		ev = e
	case domain.TypeTokenRevoked:
		e := &domain.TokenRevoked{}
		e.Name = string(d.bytes(core.MaxNameLen))
		ev = e
	case domain.TypeKeyExported:
		e := &domain.KeyExported{}
		d.id(&e.Client)
		d.id(&e.Topic)
		e.KeyVersion = d.uvarint()
		ev = e
	case domain.TypeKeyUsed:
		e := &domain.KeyUsed{}
		d.id(&e.Topic)
		e.KeyVersion = d.uvarint()
		e.Minute = d.uvarint()
		e.Protects = d.uvarint()
		e.Unprotects = d.uvarint()
		e.Failures = d.uvarint()
		ev = e
	case domain.TypeMonitorFinding:
		e := &domain.MonitorFinding{}
		e.Kind = string(d.bytes(maxBlob))
		d.id(&e.Topic)
		d.id(&e.Client)
		e.KeyVersion = d.uvarint()
		e.WindowStart = d.uvarint()
		e.WindowEnd = d.uvarint()
		e.Count = d.uvarint()
		e.Detail = string(d.bytes(maxBlob))
		ev = e
	default:
		return nil, fmt.Errorf("eventcodec: decode: %w", domain.ErrUnknownEvent)
	}
	if d.err == nil && d.off != len(d.b) {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, fmt.Errorf("eventcodec: decode %s: %w: %s", t.WireName(), domain.ErrInvalidEvent, d.err.what)
	}
	return ev, nil
}

// OpenSecret unseals a key read from the record (stream, version, wire
// type). Callers wipe the result once used.
func OpenSecret(s sealing.Sealer, sec domain.Secret, stream string, version uint64, wireType string) ([]byte, error) {
	if len(sec.Sealed()) == 0 {
		return nil, fmt.Errorf("eventcodec: open %s v%d: %w: no sealed key", stream, version, domain.ErrInvalidEvent)
	}
	k, err := s.Open(sec.Sealed(), sealing.SealAD(stream, version, wireType))
	if err != nil {
		return nil, fmt.Errorf("eventcodec: open %s v%d: %w", stream, version, err)
	}
	return k, nil
}

type decodeErr struct{ what string }

type decoder struct {
	b   []byte
	off int
	err *decodeErr
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = &decodeErr{what: what}
	}
	d.off = len(d.b)
}

func (d *decoder) byte() byte {
	if d.off >= len(d.b) {
		d.fail("short input")
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) read(dst []byte) {
	if len(d.b)-d.off < len(dst) {
		d.fail("short input")
		return
	}
	copy(dst, d.b[d.off:])
	d.off += len(dst)
}

func (d *decoder) id(dst *domain.ID) { d.read(dst[:]) }

func (d *decoder) uvarint() uint64 {
	if d.off >= len(d.b) {
		d.fail("short input")
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) uint32() uint32 {
	v := d.uvarint()
	if v > 1<<32-1 {
		d.fail("index overflow")
		return 0
	}
	return uint32(v)
}

// bytes returns a length-prefixed field aliasing the input (callers clone
// what they keep).
func (d *decoder) bytes(max int) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(max) || n > uint64(len(d.b)-d.off) {
		d.fail("field length")
		return nil
	}
	v := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return v
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
