package automation

import (
	"encoding/json"
	"testing"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/suites/core"
)

var specSeeds = []string{
	`{"id":"a","trigger":{"event":"event.type == \"topic.client_linked.v1\" && hasPrefix(event.topic, \"sensors/\")"},"action":{"type":"rotate_topic"}}`,
	`{"id":"b","trigger":{"every":"24h","catch_up":"once"},"targets":"topics | filter(.name matches \"^s/\" && .members > 2)","action":{"type":"rotate_topic"}}`,
	`{"id":"c","trigger":{"cron":"0 3 * * mon"},"targets":"clients | filter(.topics == 0)","action":{"type":"reset_client"}}`,
	`{"id":"d","trigger":{"event":"true","min_interval":"10m"},"action":{"type":"detach_client","topic":"event.topic"}}`,
	`{"id":"e","trigger":{"every":"1h"},"action":{"type":"rotate_c2_key"},"rate_limit":{"max":1,"per":"1h"}}`,
}

// FuzzSpec: an API body never panics the decoder or the compiler, and a
// spec that compiles survives a JSON round trip (what rule.created.v1
// stores) and compiles again.
func FuzzSpec(f *testing.F) {
	if len(specSeeds) == 0 {
		f.Fatal("no seeds")
	}
	for _, s := range specSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var s Spec
		if json.Unmarshal(body, &s) != nil {
			return
		}
		for _, mode := range []core.Mode{core.SymKey, core.PubKey} {
			if _, err := compileSpec(s, mode, defaultMaxNodes); err != nil {
				continue
			}
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			var back Spec
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("round trip: %v", err)
			}
			if _, err := compileSpec(back, mode, defaultMaxNodes); err != nil {
				t.Fatalf("round trip no longer compiles: %v", err)
			}
		}
	})
}

// FuzzFoldRule: stored rule events of any content never panic the fold.
func FuzzFoldRule(f *testing.F) {
	for _, s := range specSeeds {
		f.Add(TypeRuleCreated, []byte(`{"spec":`+s+`}`), TypeRuleFired, []byte(`{"trigger":"event","cause":"x","depth":1,"operations":[]}`))
	}
	f.Add(TypeRuleCreated, []byte(`{}`), TypeRuleStopped, []byte(`{"reason":"r","kind":"rate"}`))
	f.Fuzz(func(t *testing.T, t1 string, d1 []byte, t2 string, d2 []byte) {
		recs := []eventstore.Record{
			{EventData: eventstore.EventData{Type: t1, Data: d1}, Version: 1, Position: 1},
			{EventData: eventstore.EventData{Type: t2, Data: d2}, Version: 2, Position: 2},
		}
		st, err := foldRule("fz", recs)
		if err != nil {
			return
		}
		if st.Version != 2 || st.Status == "" {
			t.Fatalf("state %+v", st)
		}
	})
}
