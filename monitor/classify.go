package monitor

import (
	"encoding/binary"
	"errors"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/suites/core"
)

// Class is what the monitor concluded about one message.
type Class uint8

// The classes, in the order of doc.go's classification.
const (
	ClassCurrent         Class = iota // authentic under the topic's current key
	ClassPrevious                     // authentic under the previous key, inside the transition window
	ClassOldKey                       // authentic under an older key: a device missed a rotation
	ClassForged                       // not authentic under any key the C2 knows (forged or corrupted)
	ClassPlaintext                    // looks like clear text on a protected topic (a leak)
	ClassStale                        // authentic, timestamp older than the window (replay or clock drift)
	ClassFuture                       // authentic, timestamp ahead of the window (clock drift or manipulation)
	ClassReplay                       // authentic, in the window, and already seen
	ClassUnknownSigner                // PK: the sender id names no registered client
	ClassNotMember                    // PK: a valid signature by a client not linked to the topic
	ClassConsumerPublish              // PK: a valid signature by a member whose role is consumer
	numClasses
)

var classNames = [numClasses]string{
	ClassCurrent:         "current",
	ClassPrevious:        "previous",
	ClassOldKey:          "old_key",
	ClassForged:          "forged",
	ClassPlaintext:       "plaintext",
	ClassStale:           "stale",
	ClassFuture:          "future",
	ClassReplay:          "replay",
	ClassUnknownSigner:   "unknown_signer",
	ClassNotMember:       "not_member",
	ClassConsumerPublish: "consumer_publish",
}

// String returns the stable name of c, used as finding kind and metric
// label.
func (c Class) String() string {
	if c >= numClasses {
		return "invalid"
	}
	return classNames[c]
}

// Classes returns every class, in order.
func Classes() []Class {
	out := make([]Class, numClasses)
	for i := range out {
		out[i] = Class(i)
	}
	return out
}

// Finding reports whether messages of class c are findings (everything but
// the two valid key classes).
func (c Class) Finding() bool { return c != ClassCurrent && c != ClassPrevious && c < numClasses }

// Key is one version of a topic key, in clear (held in memory only).
type Key = c2.VersionedKey

// TopicKeys is what the classifier knows of a topic's keys: the service's
// key history as it is (Previous counts as valid inside the transition
// window after Replaced; Older, newest first, are bounded). Wipe zeroes
// them.
type TopicKeys = c2.TopicKeyHistory

// Signer is what the classifier knows of a PK sender id.
type Signer struct {
	// Public is the signing public key (SetPubKey's form).
	Public []byte
	// Member: linked to the topic; Consumer: its role is consumer.
	Member, Consumer bool
}

// Verdict is the result of Classify.
type Verdict struct {
	Class Class
	// KeyVersion is the version of the key that authenticated the message
	// (0 when none did).
	KeyVersion uint64
	// Signer is the PK sender id when its signature verified.
	Signer    [16]byte
	HasSigner bool
	// Timestamp is the message's timestamp (zero when it has none).
	Timestamp time.Time
}

// Classifier classifies one message at a time. It holds no state: the
// replay check, which needs some, is the Monitor's. It is safe for
// concurrent use.
type Classifier struct {
	suite      core.Suite
	pk         core.PKSuite // nil in SK mode
	window     core.Window
	transition time.Duration
	overhead   int
}

// NewClassifier returns a classifier for suite in mode m, with the
// receivers' timestamp window and key transition period.
func NewClassifier(suite core.Suite, m core.Mode, w core.Window, transition time.Duration) (*Classifier, error) {
	c := &Classifier{suite: suite, window: w, transition: transition, overhead: suite.Sizes().SKOverhead}
	if m == core.PubKey {
		pk, ok := suite.(core.PKSuite)
		if !ok {
			return nil, &core.ModeError{Suite: suite.Name(), Mode: m.String(), Reason: "suite has no PK mode"}
		}
		c.pk, c.overhead = pk, suite.Sizes().PKOverhead
	}
	return c, nil
}

// timestampOf reads the LE64 timestamp of a protected message.
func timestampOf(b []byte) time.Time {
	return time.Unix(int64(binary.LittleEndian.Uint64(b)), 0)
}

// exact is the window used to authenticate a message whatever its age:
// Unprotect is called with now set to the message's own timestamp, so the
// suite's timestamp check always passes and the monitor judges the
// timestamp itself, after authenticity (a forger must not be reported as a
// stale sender, nor a stale sender as a forger).
var exact = core.Window{}

// Classify classifies payload, published on a topic with keys, at now.
// signer looks up a PK sender id (ok false: unknown). It never panics and
// never returns or keeps the plaintext.
func (c *Classifier) Classify(keys *TopicKeys, signer func(id []byte) (Signer, bool), payload []byte, now time.Time) Verdict {
	if looksPlain(payload) {
		return Verdict{Class: ClassPlaintext}
	}
	var v Verdict
	if c.pk != nil {
		v = c.classifyPK(keys, signer, payload, now)
	} else {
		v = c.classifySK(keys, payload, now)
	}
	if v.Class != ClassCurrent && v.Class != ClassPrevious && v.Class != ClassOldKey {
		return v
	}
	switch {
	case v.Timestamp.After(now.Add(c.window.MaxSkew)):
		v.Class = ClassFuture
	case v.Timestamp.Before(now.Add(-c.window.MaxAge)):
		v.Class = ClassStale
	}
	return v
}

// keyClass is the class of a message authenticated by key i of keys.order.
func (c *Classifier) keyClass(keys *TopicKeys, i int, now time.Time) Class {
	switch {
	case i == 0:
		return ClassCurrent
	case i == 1 && keys.Previous.Version != 0 && now.Sub(keys.Replaced) <= c.transition:
		return ClassPrevious
	}
	return ClassOldKey
}

// keyAt returns key i in trial order: current, previous, older ones.
func keyAt(keys *TopicKeys, i int) (Key, bool) {
	switch {
	case i == 0:
		return keys.Current, len(keys.Current.Key) > 0
	case i == 1:
		return keys.Previous, keys.Previous.Version != 0 && len(keys.Previous.Key) > 0
	case i-2 < len(keys.Older):
		k := keys.Older[i-2]
		return k, len(k.Key) > 0
	}
	return Key{}, false
}

func (c *Classifier) classifySK(keys *TopicKeys, payload []byte, now time.Time) Verdict {
	if len(payload) <= c.overhead {
		return Verdict{Class: ClassForged}
	}
	ts := timestampOf(payload)
	for i := 0; i < 2+len(keys.Older); i++ {
		k, ok := keyAt(keys, i)
		if !ok {
			continue
		}
		if _, err := c.suite.Unprotect(k.Key, payload, ts, exact); err == nil {
			return Verdict{Class: c.keyClass(keys, i, now), KeyVersion: k.Version, Timestamp: ts}
		} else if !errors.Is(err, core.ErrNotAuthentic) {
			break // malformed for this suite: no key can open it
		}
	}
	return Verdict{Class: ClassForged}
}

// classifyPK checks, in order: the signer is registered, the signature
// verifies, the signer is a member with a role that publishes, then which
// key decrypts. The signature is verified once per key tried (the suites
// verify before decrypting); the current key is tried first, so a valid
// message costs one verification.
func (c *Classifier) classifyPK(keys *TopicKeys, signer func(id []byte) (Signer, bool), payload []byte, now time.Time) Verdict {
	if len(payload) < c.overhead {
		return Verdict{Class: ClassForged}
	}
	ts := timestampOf(payload)
	var sg Signer
	found := false
	lookup := func(id []byte) ([]byte, error) {
		if signer == nil {
			return nil, core.ErrPubKeyNotFound
		}
		s, ok := signer(id)
		if !ok || len(s.Public) == 0 {
			return nil, core.ErrPubKeyNotFound
		}
		sg, found = s, true
		return s.Public, nil
	}
	for i := 0; i < 2+len(keys.Older); i++ {
		k, ok := keyAt(keys, i)
		if !ok {
			continue
		}
		_, sender, err := c.pk.UnprotectSigned(k.Key, payload, ts, exact, lookup)
		switch {
		case err == nil:
			v := Verdict{Class: c.keyClass(keys, i, now), KeyVersion: k.Version, Timestamp: ts, HasSigner: true}
			copy(v.Signer[:], sender)
			return c.authorize(v, sg)
		case errors.Is(err, core.ErrPubKeyNotFound):
			return Verdict{Class: ClassUnknownSigner}
		case errors.Is(err, core.ErrNotAuthentic) && found:
			continue // signed by a registered client: try the next key
		}
		return Verdict{Class: ClassForged}
	}
	// Signed by a registered client, but no key decrypts. Who signed
	// still matters: a non-member usually holds no topic key.
	v := Verdict{Class: ClassForged}
	if found {
		id, _ := c.pk.SenderID(payload)
		copy(v.Signer[:], id)
		v.HasSigner = true
		if !sg.Member || sg.Consumer {
			v.Timestamp = ts
			return c.authorize(v, sg)
		}
	}
	return v
}

// authorize turns an authentic PK verdict into not_member or
// consumer_publish when the signer may not publish on the topic.
func (c *Classifier) authorize(v Verdict, sg Signer) Verdict {
	switch {
	case !sg.Member:
		v.Class = ClassNotMember
	case sg.Consumer:
		v.Class = ClassConsumerPublish
	}
	return v
}

// looksPlain reports whether b looks like clear text: valid UTF-8, no NUL,
// and at least 95% printable runes (JSON, CSV, log lines...). No protected
// message passes: its first 8 bytes are a little-endian Unix time whose
// upper bytes are zero until the year 2106.
func looksPlain(b []byte) bool {
	if len(b) == 0 || !utf8.Valid(b) {
		return false
	}
	total, bad := 0, 0
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		i += n
		total++
		switch {
		case r == 0:
			return false
		case r == '\n' || r == '\r' || r == '\t':
		case !unicode.IsPrint(r):
			bad++
		}
	}
	return bad*20 <= total
}
