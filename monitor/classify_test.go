package monitor

import (
	"bytes"
	"testing"
	"time"

	"github.com/e4c2/e4c2/suites"
	"github.com/e4c2/e4c2/suites/core"
)

// fixture is one suite and mode with a topic whose key was rotated three
// times: version 4 is current, 3 previous (replaced at rotated), 2 and 1
// older.
type fixture struct {
	name    string
	suite   core.Suite
	mode    core.Mode
	keys    *TopicKeys
	cls     *Classifier
	now     time.Time
	signers map[[16]byte]Signer
	ids     map[string]core.Identity // PK: bound identities by client name
}

var testNow = time.Unix(1_767_225_600, 0)

func fixtures(t testing.TB) []*fixture {
	t.Helper()
	var out []*fixture
	for _, s := range suites.All() {
		for _, m := range s.Modes() {
			out = append(out, newFixture(t, s, m))
		}
	}
	return out
}

func newFixture(t testing.TB, s core.Suite, m core.Mode) *fixture {
	t.Helper()
	f := &fixture{name: s.Name() + "/" + m.String(), suite: s, mode: m, now: testNow,
		signers: map[[16]byte]Signer{}, ids: map[string]core.Identity{}}
	key := func(v uint64) Key {
		k, err := s.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		return Key{Version: v, Key: k}
	}
	f.keys = &TopicKeys{Current: key(4), Previous: key(3), Replaced: testNow.Add(-10 * time.Minute),
		Older: []Key{key(2), key(1)}}
	cls, err := NewClassifier(s, m, core.DefaultWindow(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f.cls = cls
	if m == core.PubKey {
		pk := s.(core.PKSuite)
		for _, c := range []struct {
			name             string
			member, consumer bool
		}{{"alice", true, false}, {"bob", false, false}, {"carol", true, true}} {
			id, err := pk.GenerateIdentity()
			if err != nil {
				t.Fatal(err)
			}
			cid := s.ID(c.name)
			bound, err := pk.BindIdentity(id, cid)
			if err != nil {
				t.Fatal(err)
			}
			f.ids[c.name] = bound
			f.signers[[16]byte(cid)] = Signer{Public: id.SigningPublicKey(), Member: c.member, Consumer: c.consumer}
		}
		mallory, err := pk.GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		bound, err := pk.BindIdentity(mallory, s.ID("mallory"))
		if err != nil {
			t.Fatal(err)
		}
		f.ids["mallory"] = bound // not registered
	}
	return f
}

func (f *fixture) signer(id []byte) (Signer, bool) {
	s, ok := f.signers[[16]byte(id)]
	return s, ok
}

// protect makes a message under key k at ts, signed by who in PK mode.
func (f *fixture) protect(t testing.TB, k Key, who string, msg []byte, ts time.Time) []byte {
	t.Helper()
	var out []byte
	var err error
	if f.mode == core.PubKey {
		out, err = f.suite.(core.PKSuite).ProtectSigned(f.ids[who], k.Key, msg, ts)
	} else {
		out, err = f.suite.Protect(k.Key, msg, ts)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *fixture) classify(payload []byte, now time.Time) Verdict {
	return f.cls.Classify(f.keys, f.signer, payload, now)
}

func TestClassify(t *testing.T) {
	msg := bytes.Repeat([]byte{0xA5}, 1024)
	for _, f := range fixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			now := f.now
			cases := []struct {
				name    string
				payload []byte
				at      time.Time
				want    Class
				version uint64
			}{
				{"current", f.protect(t, f.keys.Current, "alice", msg, now), now, ClassCurrent, 4},
				{"previous in transition", f.protect(t, f.keys.Previous, "alice", msg, now), now, ClassPrevious, 3},
				{"previous after transition", f.protect(t, f.keys.Previous, "alice", msg, now.Add(2*time.Hour)), now.Add(2 * time.Hour), ClassOldKey, 3},
				{"older key", f.protect(t, f.keys.Older[1], "alice", msg, now), now, ClassOldKey, 1},
				{"stale", f.protect(t, f.keys.Current, "alice", msg, now.Add(-11*time.Minute)), now, ClassStale, 4},
				{"future", f.protect(t, f.keys.Current, "alice", msg, now.Add(time.Minute)), now, ClassFuture, 4},
				{"plaintext json", []byte(`{"temperature": 21.5, "unit": "C"}`), now, ClassPlaintext, 0},
				{"plaintext text", []byte("hello world, sensor 7 online\n"), now, ClassPlaintext, 0},
				{"empty", nil, now, ClassForged, 0},
				{"short", []byte{1, 2, 3}, now, ClassForged, 0},
			}
			forged := f.protect(t, f.keys.Current, "alice", msg, now)
			forged[len(forged)/2] ^= 1
			want := ClassForged
			cases = append(cases, struct {
				name    string
				payload []byte
				at      time.Time
				want    Class
				version uint64
			}{"corrupted", forged, now, want, 0})
			unknownKey := Key{Version: 9, Key: bytes.Repeat([]byte{7}, 32)}
			if f.mode == core.PubKey {
				cases = append(cases, []struct {
					name    string
					payload []byte
					at      time.Time
					want    Class
					version uint64
				}{
					{"unknown signer", f.protect(t, f.keys.Current, "mallory", msg, now), now, ClassUnknownSigner, 0},
					{"not a member", f.protect(t, f.keys.Current, "bob", msg, now), now, ClassNotMember, 4},
					{"not a member, no topic key", f.protect(t, unknownKey, "bob", msg, now), now, ClassNotMember, 0},
					{"consumer publishing", f.protect(t, f.keys.Current, "carol", msg, now), now, ClassConsumerPublish, 4},
					{"member, unknown key", f.protect(t, unknownKey, "alice", msg, now), now, ClassForged, 0},
				}...)
			} else {
				cases = append(cases, struct {
					name    string
					payload []byte
					at      time.Time
					want    Class
					version uint64
				}{"unknown key", f.protect(t, unknownKey, "", msg, now), now, ClassForged, 0})
			}
			for _, c := range cases {
				v := f.classify(c.payload, c.at)
				if v.Class != c.want || v.KeyVersion != c.version {
					t.Errorf("%s: got %s (key v%d), want %s (key v%d)", c.name, v.Class, v.KeyVersion, c.want, c.version)
				}
			}
		})
	}
}

func TestLooksPlainRefusesProtectedMessages(t *testing.T) {
	for _, f := range fixtures(t) {
		// Printable plaintext inside: the timestamp's zero bytes still
		// keep the message from looking plain.
		p := f.protect(t, f.keys.Current, "alice", []byte("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), f.now)
		if looksPlain(p) {
			t.Errorf("%s: a protected message looks plain", f.name)
		}
	}
	for _, s := range []string{"", "\x00abc", "\xff\xfe", string(bytes.Repeat([]byte{1}, 40))} {
		if looksPlain([]byte(s)) {
			t.Errorf("%q looks plain", s)
		}
	}
}

func TestReplaySet(t *testing.T) {
	r := newReplaySet(3, time.Minute)
	now := testNow
	for d := uint64(1); d <= 3; d++ {
		if r.seenBefore(d, now) {
			t.Fatalf("%d seen before its first time", d)
		}
	}
	if !r.seenBefore(2, now) {
		t.Fatal("replay of 2 not detected")
	}
	if r.seenBefore(4, now) || r.evicted != 1 {
		t.Fatalf("4: want new with one eviction, evicted %d", r.evicted)
	}
	if r.seenBefore(1, now) {
		t.Fatal("1 was evicted, yet reported seen")
	}
	if r.seenBefore(3, now.Add(2*time.Minute)) {
		t.Fatal("3 expired with its window, yet reported seen")
	}
}

// TestReplaySetGrowsOnDemand: a topic's replay set takes memory for the
// digests it holds, not for its capacity: every managed topic that sees
// one message (a device or any broker client can publish on each) must
// not cost the full 65536-entry ring. Past the growth it still detects
// replays in order and evicts the oldest at capacity.
func TestReplaySetGrowsOnDemand(t *testing.T) {
	r := newReplaySet(65536, time.Minute)
	now := testNow
	r.seenBefore(1, now)
	if n := cap(r.ring); n > 64 {
		t.Fatalf("one digest holds a ring of %d entries", n)
	}
	small := newReplaySet(100, time.Minute)
	for d := uint64(1); d <= 100; d++ {
		if small.seenBefore(d, now) {
			t.Fatalf("%d seen before its first time", d)
		}
	}
	for d := uint64(1); d <= 100; d++ {
		if !small.seenBefore(d, now) {
			t.Fatalf("replay of %d not detected after growth", d)
		}
	}
	if small.seenBefore(101, now) || small.evicted != 1 || small.seenBefore(1, now) {
		t.Fatalf("at capacity: want the oldest evicted, evicted %d", small.evicted)
	}
	if !small.seenBefore(101, now) || !small.seenBefore(50, now) {
		t.Fatal("a digest kept at capacity is not reported seen")
	}
}
