package automation

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/e4c2/e4c2/suites/core"
)

// Every JSON example of RULES.md is a valid rule in SK or PK mode, so the
// guide cannot drift from the API.
func TestRulesGuideExamples(t *testing.T) {
	doc, err := os.ReadFile("RULES.md")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(doc), "```json\n")
	if len(parts) < 6 {
		t.Fatalf("found %d JSON examples, want at least 5", len(parts)-1)
	}
	for i, p := range parts[1:] {
		body, _, ok := strings.Cut(p, "```")
		if !ok {
			t.Fatalf("example %d not closed", i)
		}
		dec := json.NewDecoder(strings.NewReader(body))
		dec.DisallowUnknownFields()
		var s Spec
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("example %d: %v\n%s", i, err, body)
		}
		_, errSK := compileSpec(s, core.SymKey, defaultMaxNodes)
		_, errPK := compileSpec(s, core.PubKey, defaultMaxNodes)
		if errSK != nil && errPK != nil {
			t.Fatalf("example %d (%s): sk: %v; pk: %v", i, s.ID, errSK, errPK)
		}
	}
}
