package eventcodec_test

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/eventcodec"
	"github.com/e4c2/e4c2/suites/core"
)

// goldenHex is the encoding of goldenEvents as the codec wrote it when it
// still lived in package domain (printed by that code, not by this one).
// Stored logs hold these bytes: a change here is a change of the wire
// format, which needs a new format byte or wire name, never an edit.
var goldenHex = []string{
	"010102030405060708090a0b0c0d0e0f1001056465762d313ca1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a100",
	"0102030405060708090a0b0c0d0e0f1011030000200707070707070707070707070707070707070707070707070707070707070707",
	"01030405060708090a0b0c0d0e0f101112",
	"010405060708090a0b0c0d0e0f101112133ca4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4",
	"0105060708090a0b0c0d0e0f1011121314",
	"01060708090a0b0c0d0e0f10111213141503612f623ca6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6",
	"010708090a0b0c0d0e0f101112131415163ca7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7",
	"0108090a0b0c0d0e0f1011121314151617",
	"01090a0b0c0d0e0f1011121314151617180a0b0c0d0e0f10111213141516171819",
	"010b0c0d0e0f101112131415161718191a0c0d0e0f101112131415161718191a1b",
	"012009090909090909090909090909090909090909090909090909090909090909093cacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacacac",
	"01030d0e0f101112131415161718191a1b1cac020e0f101112131415161718191a1b1c1d0280808080802005020f101112131415161718191a1b1c1d1e01101112131415161718191a1b1c1d1e1f9f8d06",
	"011112131415161718191a1b1c1d1e1f2012131415161718191a1b1c1d1e1f202103",
	"01131415161718191a1b1c1d1e1f2021221415161718191a1b1c1d1e1f20212223f0a2040e62726f6b65722073616964206e6f",
	"01026369020102030000000000000000000000000000000000000000000000000000000000",
	"01026369",
	"011b1c1d1e1f202122232425262728292a15161718191a1b1c1d1e1f202122232407",
	"01161718191a1b1c1d1e1f2021222324251718191a1b1c1d1e1f2021222324252604",
	"0118191a1b1c1d1e1f202122232425262701",
	"01191a1b1c1d1e1f20212223242526272800",
	"011a1b1c1d1e1f202122232425262728290380f2d6ca0601808080802002",
}

// TestWireFormatGolden pins the stored form of every event type: encoding
// gives the recorded bytes, and the recorded bytes decode to the event.
func TestWireFormatGolden(t *testing.T) {
	evs := goldenEvents()
	if len(evs) != len(goldenHex) {
		t.Fatalf("%d golden events, %d encodings", len(evs), len(goldenHex))
	}
	covered := map[domain.Type]bool{}
	for i, ev := range evs {
		name := ev.EventType().WireName()
		covered[ev.EventType()] = true
		want, err := hex.DecodeString(goldenHex[i])
		if err != nil {
			t.Fatal(err)
		}
		got, err := eventcodec.Encode(ev, "s", 1, nil)
		if err != nil {
			t.Fatalf("%d %s: %v", i, name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%d %s: encoded\n%x\nwant\n%x", i, name, got, want)
		}
		back, err := eventcodec.Decode(name, want)
		if err != nil {
			t.Fatalf("%d %s: stored form does not decode: %v", i, name, err)
		}
		again, err := eventcodec.Encode(back, "s", 1, nil)
		if err != nil || !bytes.Equal(again, want) {
			t.Errorf("%d %s: stored form does not re-encode to itself: %v", i, name, err)
		}
	}
	if len(covered) != len(domain.WireNames()) {
		t.Errorf("golden events cover %d of %d event types", len(covered), len(domain.WireNames()))
	}
}

// goldenEvents returns one event of every catalogue type with fixed
// contents; secrets are given already sealed, so that encoding is
// deterministic (Encode writes sealed bytes as they are).
func goldenEvents() []domain.Event {
	sealed := func(b byte) domain.Secret { return domain.SealedSecret(bytes.Repeat([]byte{b}, 60)) }
	return []domain.Event{
		&domain.ClientRegistered{Client: id(1), Name: "dev-1", Role: domain.RoleConsumer, Key: sealed(0xA1)},
		&domain.ClientRegistered{Client: id(2), Role: domain.RolePublisher, PublicKey: bytes.Repeat([]byte{7}, 32)},
		&domain.ClientRemoved{Client: id(3)},
		&domain.ClientKeyRotated{Client: id(4), Key: sealed(0xA4)},
		&domain.ClientTopicsReset{Client: id(5)},
		&domain.TopicCreated{Topic: id(6), Name: "a/b", Key: sealed(0xA6)},
		&domain.TopicKeyRotated{Topic: id(7), Key: sealed(0xA7)},
		&domain.TopicRemoved{Topic: id(8)},
		&domain.TopicClientLinked{Topic: id(9), Client: id(10)},
		&domain.TopicClientUnlinked{Topic: id(11), Client: id(12)},
		&domain.C2KeyGenerated{Public: bytes.Repeat([]byte{9}, 32), Private: sealed(0xAC)},
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
		&domain.KeyUsed{Topic: id(26), KeyVersion: 3, Minute: 1_767_225_600, Protects: 1, Unprotects: 1 << 33, Failures: 2},
	}
}
