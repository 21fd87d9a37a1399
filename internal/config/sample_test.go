package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The documented sample configuration (docs/e4c2.sample.json) loads, is
// valid, and names every field of Config, each also documented in
// docs/configuration.md: a new setting without its sample and its line
// fails here.
func TestSampleConfigCoversEveryField(t *testing.T) {
	sample := filepath.Join("..", "..", "docs", "e4c2.sample.json")
	c := Default()
	if err := c.LoadFile(sample); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the sample does not validate: %v", err)
	}
	raw, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeOf(Config{})
	for i := range typ.NumField() {
		tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if tag == "-" {
			// A flag for one start (serve --from-scratch, --read-only), not a
			// file setting: documented under its flag.
			flag := "--" + kebab(typ.Field(i).Name)
			if !strings.Contains(string(doc), "`"+flag+"`") {
				t.Errorf("docs/configuration.md does not document the start flag %s (Config.%s)", flag, typ.Field(i).Name)
			}
			continue
		}
		if tag == "" {
			t.Errorf("field %s has no JSON name", typ.Field(i).Name)
			continue
		}
		if _, ok := keys[tag]; !ok {
			t.Errorf("docs/e4c2.sample.json lacks %q (Config.%s)", tag, typ.Field(i).Name)
		}
		if !strings.Contains(string(doc), "`"+tag+"`") {
			t.Errorf("docs/configuration.md does not document %q", tag)
		}
	}
}

// kebab turns a Go field name into its flag name: FromScratch -> from-scratch.
func kebab(name string) string {
	var b strings.Builder
	for i, r := range name {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('-')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
