package client

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/fips"
	"github.com/e4c2/e4c2/suites/pq"
	"github.com/e4c2/e4c2/suites/standard"
)

// knownErrors are the kinds Unprotect may fail with; anything else (or a
// panic) is a bug.
var knownErrors = []error{
	ErrTopicKeyMissing, ErrInvalidProtectedLen, ErrTooShortCiphertext, ErrInvalidSignature,
	ErrNotAuthentic, ErrTimestampInFuture, ErrTimestampTooOld, ErrPubKeyNotFound,
	ErrInvalidCommand, ErrUnsupportedOperation, ErrInvalidKey, ErrInvalidTopic,
}

// fuzzTopics are the topics a fuzz input can target; index 0 is the
// client's control topic.
var fuzzTopics = []string{"", "sensors/temperature", "topic/a", "topic/b", "no/key/here"}

// fuzzClient is a template client; each fuzz iteration runs on a fresh
// copy (same immutable state snapshot, its own clock), so that inputs are
// independent.
type fuzzClient struct{ base *Client }

func (fc fuzzClient) run(t *testing.T, data []byte, sel uint8, now int64) {
	set := *fc.base.set
	set.clock = func() time.Time { return time.Unix(now, 0) }
	c, err := newClient(&set, fc.base.st.Load())
	if err != nil {
		t.Fatal(err)
	}
	topic := fuzzTopics[int(sel)%len(fuzzTopics)]
	if topic == "" {
		topic = c.ControlTopic()
	}
	before := c.st.Load()
	m, err := c.UnprotectMessage(data, topic)
	if m.IsCommand != (topic == c.ControlTopic()) {
		t.Fatalf("IsCommand=%v on %s", m.IsCommand, topic)
	}
	if err != nil {
		ok := false
		for _, k := range knownErrors {
			ok = ok || errors.Is(err, k)
		}
		if !ok {
			t.Fatalf("error of unknown kind: %v", err)
		}
		if m.Payload != nil || c.st.Load() != before {
			t.Fatal("failed Unprotect returned a payload or changed the state")
		}
		return
	}
	if m.IsCommand {
		if m.Payload != nil {
			t.Fatal("command returned a payload")
		}
		return
	}
	if c.st.Load() != before {
		t.Fatal("application message changed the state")
	}
	overhead := set.sizes.SKOverhead
	if set.mode == core.PubKey {
		overhead = set.sizes.PKOverhead
	}
	if len(data) != len(m.Payload)+overhead {
		t.Fatalf("payload of %d bytes from %d protected bytes", len(m.Payload), len(data))
	}
}

// standardFuzzClients builds the SK and PK clients of the reference vectors
// (sk-client-1 and pk-client-1 with their command-vector state), so that
// the vector seeds reach deep code paths.
func standardFuzzClients(t testing.TB, v *vectorFile) (sk, pk fuzzClient) {
	t.Helper()
	s := standard.New()
	sensors := core.Command{Code: core.CmdSetTopicKey, Key: hx(t, v.Negative[0].TopicKey), TopicHash: s.HashTopic("sensors/temperature")}
	skc := importVectorState(t, v.Commands[0].SK.StateBefore)
	pkc := importVectorState(t, v.Commands[0].PK.StateBefore)
	for _, c := range []*Client{skc, pkc} {
		apply(t, c, sensors)
	}
	// pk-client-1 reads its own messages.
	apply(t, pkc, core.Command{Code: core.CmdSetPubKey, Key: pkc.SigningPublicKey(), ID: pkc.ID()})
	return fuzzClient{skc}, fuzzClient{pkc}
}

func FuzzClientUnprotect(f *testing.F) {
	v := loadVectors(f)
	sk, pk := standardFuzzClients(f, v)
	topicIndex := func(topic string) uint8 {
		for i, tp := range fuzzTopics {
			if tp == topic {
				return uint8(i)
			}
		}
		return 1
	}
	n := 0
	add := func(data []byte, sel uint8, now int64, isPK bool) {
		n++
		if isPK {
			sel |= 0x80
		}
		f.Add(data, sel, now)
	}
	for _, c := range v.Commands {
		add(hx(f, c.SK.Protected), 0, c.SK.Timestamp, false)
		add(hx(f, c.PK.Protected), 0, c.PK.Timestamp, true)
	}
	for _, m := range append(append([]vMessage{}, v.SKMessages...), v.PKMessages...) {
		add(hx(f, m.Protected), topicIndex(m.Topic), m.Timestamp, m.Mode == "pk")
	}
	for _, nv := range v.Negative {
		sel := topicIndex(nv.Topic)
		if nv.Kind == "command" {
			sel = 0
		}
		add(hx(f, nv.Protected), sel, nv.NowUnix, nv.Mode == "pk")
	}
	for _, tw := range v.TimestampWindow {
		add(hx(f, tw.Protected), 1, tw.NowUnix, tw.Mode == "pk")
	}
	if n == 0 {
		f.Fatal("no fuzz seeds")
	}
	f.Fuzz(func(t *testing.T, data []byte, sel uint8, now int64) {
		if sel&0x80 != 0 {
			pk.run(t, data, sel&0x7f, now)
		} else {
			sk.run(t, data, sel, now)
		}
	})
}

// suiteFuzzSeeds builds, for a suite without reference vectors, template
// clients with fixed keys and seeds made by protecting messages and
// commands with that suite at a fixed time.
func suiteFuzz(f *testing.F, s core.Suite) {
	const now = 1_700_000_000
	ts := time.Unix(now, 0)
	var clients []fuzzClient
	n := 0
	for _, mode := range s.Modes() {
		e := newEnv(f, combo{s, mode})
		self := e.selfPeer()
		k := bytes.Repeat([]byte{0x11}, 32)
		e.setTopicKey("sensors/temperature", k)
		idx := uint8(len(clients)) << 7
		clients = append(clients, fuzzClient{e.c})
		for _, cmd := range [][]byte{
			core.EncodeResetTopics(),
			mustEncode(f)(core.EncodeSetTopicKey(bytes.Repeat([]byte{2}, 32), s.HashTopic("topic/a"))),
			mustEncode(f)(core.EncodeRemoveTopic(s.HashTopic("sensors/temperature"))),
			core.EncodeResetPubKeys(),
		} {
			f.Add(e.protectCommand(cmd), idx, int64(now))
			n++
		}
		for _, size := range []int{0, 1, 16, 100} {
			f.Add(e.protectFrom(self, k, bytes.Repeat([]byte{'m'}, size), ts), idx|1, int64(now))
			n++
		}
	}
	if n == 0 {
		f.Fatal("no fuzz seeds")
	}
	f.Fuzz(func(t *testing.T, data []byte, sel uint8, now int64) {
		clients[int(sel>>7)%len(clients)].run(t, data, sel&0x7f, now)
	})
}

func FuzzClientUnprotectFIPS(f *testing.F) { suiteFuzz(f, fips.New()) }

func FuzzClientUnprotectPQ(f *testing.F) { suiteFuzz(f, pq.New()) }
