package eventcodec_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/eventcodec"
	"github.com/e4c2/e4c2/suites/core"
)

func id(b byte) domain.ID {
	var x domain.ID
	for i := range x {
		x[i] = b + byte(i)
	}
	return x
}

// sampleEvents returns one event of every catalogue type, with keys in
// clear (as Decide returns them): all 32 bytes of 0xAB.
func sampleEvents() []domain.Event {
	return eventsWith(func(byte) domain.Secret { return domain.NewSecret(bytes.Repeat([]byte{0xAB}, 32)) })
}

// eventsWith returns one event of every catalogue type (two for those with
// an optional part), each key made by secret from a byte that tells the
// events apart.
func eventsWith(secret func(tag byte) domain.Secret) []domain.Event {
	return []domain.Event{
		&domain.ClientRegistered{Client: id(1), Name: "dev-1", Role: domain.RoleConsumer, Key: secret(0xA1)},
		&domain.ClientRegistered{Client: id(2), Role: domain.RolePublisher, PublicKey: bytes.Repeat([]byte{7}, 32)},
		&domain.ClientRemoved{Client: id(3)},
		&domain.ClientKeyRotated{Client: id(4), Key: secret(0xA4)},
		&domain.ClientTopicsReset{Client: id(5)},
		&domain.TopicCreated{Topic: id(6), Name: "a/b", Key: secret(0xA6)},
		&domain.TopicKeyRotated{Topic: id(7), Key: secret(0xA7)},
		&domain.TopicRemoved{Topic: id(8)},
		&domain.TopicClientLinked{Topic: id(9), Client: id(10)},
		&domain.TopicClientUnlinked{Topic: id(11), Client: id(12)},
		&domain.C2KeyGenerated{Public: bytes.Repeat([]byte{9}, 32), Private: secret(0xAC)},
		&domain.CommandQueued{Code: core.CmdSetTopicKey, Topic: id(13), TopicKeyVersion: 300, Subject: id(14),
			SubjectKeyVersion: 2, C2KeyVersion: 1 << 40, NewC2KeyVersion: 5,
			Recipients: []domain.Recipient{{Client: id(15), KeyVersion: 1}, {Client: id(16), KeyVersion: 99999}}},
		&domain.CommandDelivered{Client: id(17), Ref: domain.QueueRef{Event: id(18), Index: 3}},
		&domain.CommandFailed{Client: id(19), Ref: domain.QueueRef{Event: id(20), Index: 70000}, Reason: "broker said no"},
		&domain.TokenCreated{Name: "ci", Role: domain.TokenOperator, Hash: [32]byte{1, 2, 3}},
		&domain.TokenRevoked{Name: "ci"},
		&domain.KeyExported{Client: id(27), Topic: id(21), KeyVersion: 7},
		&domain.CommandConfirmed{Client: id(22), Ref: domain.QueueRef{Event: id(23), Index: 4}},
		&domain.DeviceSeen{Client: id(24), SessionPresent: true},
		&domain.DeviceSeen{Client: id(25)},
		&domain.DeviceReleased{Client: id(27)},
		&domain.KeyUsed{Topic: id(26), KeyVersion: 3, Minute: 1_767_225_600, Protects: 1, Unprotects: 1 << 33, Failures: 2},
		&domain.MonitorFinding{Kind: "forged", Topic: id(27), Client: id(28), KeyVersion: 4,
			WindowStart: 1_767_225_600, WindowEnd: 1_767_225_660, Count: 1 << 34, Detail: "rate 80/10s vs 10.0±5.0"},
		&domain.MonitorFinding{Kind: "rate_drop", Topic: id(29)},
	}
}

func TestCatalogueCoversEveryType(t *testing.T) {
	names := domain.WireNames()
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("wire name %q twice", n)
		}
		seen[n] = true
		if domain.TypeOf(n).WireName() != n {
			t.Errorf("TypeOf(%q) does not map back", n)
		}
	}
	covered := map[string]bool{}
	for _, ev := range sampleEvents() {
		if !seen[ev.EventType().WireName()] {
			t.Errorf("%T has no wire name", ev)
		}
		covered[ev.EventType().WireName()] = true
	}
	for n := range covered {
		delete(seen, n)
	}
	if len(seen) != 0 {
		t.Errorf("catalogue entries without a sample event: %v", seen)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	s := newFakeSealer()
	for i, ev := range sampleEvents() {
		name := ev.EventType().WireName()
		t.Run(name, func(t *testing.T) {
			stream, version := "stream-x", uint64(10+i)
			var plain []byte
			if sec, ok := domain.SecretOf(ev); ok {
				plain = bytes.Clone(secretPlain(t, ev))
				_ = sec
			}
			data, err := eventcodec.Encode(ev, stream, version, s)
			if err != nil {
				t.Fatal(err)
			}
			if data[0] != 1 {
				t.Fatalf("format byte %d", data[0])
			}
			if plain != nil && bytes.Contains(data, plain) {
				t.Fatal("key in clear in the encoded event")
			}
			got, err := eventcodec.Decode(name, data)
			if err != nil {
				t.Fatal(err)
			}
			if plain != nil {
				sec, _ := domain.SecretOf(got)
				k, err := eventcodec.OpenSecret(s, sec, stream, version, name)
				if err != nil || !bytes.Equal(k, plain) {
					t.Fatalf("unseal: %v", err)
				}
				// Bound to its record: another version or stream fails.
				if _, err := eventcodec.OpenSecret(s, sec, stream, version+1, name); err == nil {
					t.Fatal("sealed key opened under another version")
				}
				if _, err := eventcodec.OpenSecret(s, sec, "stream-y", version, name); err == nil {
					t.Fatal("sealed key opened under another stream")
				}
			}
			// Re-encoding the decoded (sealed) event gives the same bytes.
			again, err := eventcodec.Encode(got, stream, version, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, data) {
				t.Fatal("re-encoding differs")
			}
			if plain == nil && !reflect.DeepEqual(got, ev) {
				t.Fatalf("decoded %#v, want %#v", got, ev)
			}
		})
	}
}

func secretPlain(t *testing.T, ev domain.Event) []byte {
	t.Helper()
	// The clear bytes of the sample events are all 0xAB.
	return bytes.Repeat([]byte{0xAB}, 32)
}

func TestDecodeRejects(t *testing.T) {
	s := newFakeSealer()
	data, err := eventcodec.Encode(sampleEvents()[11], "s", 1, s)
	if err != nil {
		t.Fatal(err)
	}
	name := domain.TypeCommandQueued.WireName()
	cases := map[string][]byte{
		"empty":          nil,
		"bad version":    append([]byte{2}, data[1:]...),
		"truncated":      data[:len(data)-1],
		"trailing":       append(bytes.Clone(data), 0),
		"huge recipient": append(bytes.Clone(data[:len(data)-36]), 0xff, 0xff, 0xff, 0xff, 0x0f),
	}
	for n, b := range cases {
		if _, err := eventcodec.Decode(name, b); !errors.Is(err, domain.ErrInvalidEvent) {
			t.Errorf("%s: err = %v, want ErrInvalidEvent", n, err)
		}
	}
	if _, err := eventcodec.Decode("rule.created.v1", data); !errors.Is(err, domain.ErrUnknownEvent) {
		t.Errorf("unknown type: %v", err)
	}
}

func TestEncodeNeedsSealerForSecrets(t *testing.T) {
	ev := &domain.TopicCreated{Topic: id(1), Name: "t", Key: domain.NewSecret([]byte{1, 2, 3})}
	if _, err := eventcodec.Encode(ev, "s", 1, nil); err == nil {
		t.Fatal("clear key encoded without a sealer")
	}
}

func FuzzDecodeEvent(f *testing.F) {
	s := newFakeSealer()
	n := 0
	for i, ev := range sampleEvents() {
		data, err := eventcodec.Encode(ev, "s", uint64(i+1), s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(ev.EventType()), data)
		n++
	}
	if n == 0 {
		f.Fatal("no seeds")
	}
	f.Fuzz(func(t *testing.T, typ uint8, data []byte) {
		name := domain.Type(typ % 24).WireName()
		ev, err := eventcodec.Decode(name, data)
		if err != nil {
			if !errors.Is(err, domain.ErrInvalidEvent) && !errors.Is(err, domain.ErrUnknownEvent) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		// What decodes re-encodes to the same bytes (canonical form),
		// except for non-minimal varints, which the decoder accepts.
		again, err := eventcodec.Encode(ev, "s", 1, nil)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := eventcodec.Decode(name, again); err != nil {
			t.Fatalf("re-encoded form does not decode: %v", err)
		}
	})
}
