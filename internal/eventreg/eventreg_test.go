package eventreg

import (
	"errors"
	"testing"

	"github.com/e4c2/e4c2/automation"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/eventcodec"
)

// TestEveryCatalogueHasADecoder fails when domain's or automation's
// catalogue names an event type that the registry (and so every offline
// tool) cannot decode: the "unknown event type" of e4c2 verify on a log
// holding rules.
func TestEveryCatalogueHasADecoder(t *testing.T) {
	catalogues := map[string][]string{
		"domain":     domain.WireNames(),
		"automation": automation.WireNames(),
		"eventreg":   {TypeBrokenSourceAccepted},
	}
	for owner, names := range catalogues {
		if len(names) == 0 {
			t.Fatalf("%s: empty catalogue", owner)
		}
		for _, n := range names {
			if !Known(n) {
				t.Errorf("%s event %s has no decoder in the registry", owner, n)
				continue
			}
			// Whatever the payload (domain's format byte then nothing, or
			// garbage), the owner's decoder must handle the name: decoded,
			// or rejected as malformed, never as an unknown type.
			for _, data := range [][]byte{{1}, {0xff}, []byte(`{}`)} {
				_, err := Decode(&eventstore.Record{EventData: eventstore.EventData{Type: n, Data: data}})
				if errors.Is(err, ErrUnknownEvent) || errors.Is(err, domain.ErrUnknownEvent) {
					t.Errorf("%s event %s: no decoder handles it: %v", owner, n, err)
				}
			}
		}
	}
	seen := map[string]string{}
	for _, o := range Owners() {
		for _, n := range o.WireNames() {
			if prev, dup := seen[n]; dup {
				t.Errorf("wire name %s claimed by %s and %s", n, prev, o.Name)
			}
			seen[n] = o.Name
		}
	}
}

// TestRuleEventsDecode decodes the payload shapes the engine writes.
func TestRuleEventsDecode(t *testing.T) {
	for _, n := range automation.WireNames() {
		if _, err := Decode(&eventstore.Record{EventData: eventstore.EventData{Type: n, Data: []byte(`{}`)}}); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	if _, err := Decode(&eventstore.Record{EventData: eventstore.EventData{Type: "nobody.v1", Data: []byte(`{}`)}}); !errors.Is(err, ErrUnknownEvent) {
		t.Errorf("unknown type: %v", err)
	}
}

// The helpers' key.used.v1 is read by every offline tool like any domain
// event.
func TestKeyUsedDecodes(t *testing.T) {
	ev := &domain.KeyUsed{Topic: domain.TopicHash("t"), KeyVersion: 2, Minute: 1_767_225_600, Protects: 3, Unprotects: 4, Failures: 1}
	data, err := eventcodec.Encode(ev, domain.KeyUseStream, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(&eventstore.Record{EventData: eventstore.EventData{Type: "key.used.v1", Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	if ku, ok := got.(*domain.KeyUsed); !ok || *ku != *ev {
		t.Fatalf("decoded %#v", got)
	}
}
