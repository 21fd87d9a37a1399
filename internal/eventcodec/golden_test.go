package eventcodec_test

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/eventcodec"
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
	"011b1c1d1e1f202122232425262728292a", // device.released.v1, added with the type
	"011a1b1c1d1e1f202122232425262728290380f2d6ca0601808080802002",
	// monitor.finding.v1, pinned when the type was added (after the move).
	"0106666f726765641b1c1d1e1f202122232425262728292a1c1d1e1f202122232425262728292a2b0480f2d6ca06bcf2d6ca06808080804018726174652038302f3130732076732031302e30c2b1352e30",
	"0109726174655f64726f701d1e1f202122232425262728292a2b2c000000000000000000000000000000000000000000",
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

// goldenEvents are the sample events with their keys already sealed, so
// that encoding is deterministic (Encode writes sealed bytes as they are).
func goldenEvents() []domain.Event {
	return eventsWith(func(tag byte) domain.Secret { return domain.SealedSecret(bytes.Repeat([]byte{tag}, 60)) })
}
