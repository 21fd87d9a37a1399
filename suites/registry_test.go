package suites_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/e4c2/e4c2/suites"
)

func TestAllOrder(t *testing.T) {
	want := []string{"standard", "fips", "pq"}
	if got := suites.Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	all := suites.All()
	if len(all) != len(want) {
		t.Fatalf("All() has %d suites", len(all))
	}
	for i, s := range all {
		if s.Name() != want[i] {
			t.Errorf("All()[%d] = %s, want %s", i, s.Name(), want[i])
		}
		if _, ok := s.(suites.PKSuite); slices.Contains(s.Modes(), suites.PubKey) && !ok {
			t.Errorf("%s lists PK mode but is not a PKSuite", s.Name())
		}
	}
}

func TestByName(t *testing.T) {
	for _, name := range suites.Names() {
		s, err := suites.ByName(name)
		if err != nil || s == nil || s.Name() != name {
			t.Errorf("ByName(%q) = %v, %v", name, s, err)
		}
	}
	for _, bad := range []string{"", "Standard", "aes", "fips "} {
		s, err := suites.ByName(bad)
		var se *suites.SuiteError
		if s != nil || !errors.As(err, &se) {
			t.Fatalf("ByName(%q) = %v, %v; want a *SuiteError", bad, s, err)
		}
		if se.Name != bad || !slices.Equal(se.Valid, suites.Names()) {
			t.Errorf("SuiteError = %+v", se)
		}
		if !strings.Contains(err.Error(), "standard, fips, pq") {
			t.Errorf("error %q does not list the valid suites", err)
		}
	}
}

func TestForMode(t *testing.T) {
	ok := []struct {
		name string
		mode suites.Mode
	}{
		{"standard", suites.SymKey}, {"standard", suites.PubKey},
		{"fips", suites.SymKey}, {"fips", suites.PubKey},
		{"pq", suites.PubKey},
	}
	for _, c := range ok {
		if s, err := suites.ForMode(c.name, c.mode); err != nil || s.Name() != c.name {
			t.Errorf("ForMode(%s, %s) = %v, %v", c.name, c.mode, s, err)
		}
	}

	s, err := suites.ForMode("pq", suites.SymKey)
	var me *suites.ModeError
	if s != nil || !errors.As(err, &me) {
		t.Fatalf("ForMode(pq, sk) = %v, %v; want a *ModeError", s, err)
	}
	if me.Suite != "pq" || me.Mode != "sk" || !strings.Contains(me.Reason, "quantum-safe") {
		t.Errorf("ModeError = %+v", me)
	}

	if _, err := suites.ForMode("pq", suites.Mode(9)); !errors.As(err, &me) || me.Suite != "" {
		t.Errorf("ForMode with an invalid mode: %v", err)
	}
	var se *suites.SuiteError
	if _, err := suites.ForMode("nope", suites.SymKey); !errors.As(err, &se) {
		t.Errorf("ForMode(nope) = %v, want a *SuiteError", err)
	}
}

// Every suite shares the identifier hash (SHA3-256[:16]): a client or topic
// keeps its id when a deployment changes suite.
func TestSharedHash(t *testing.T) {
	all := suites.All()
	for _, s := range all[1:] {
		for _, name := range []string{"client-1", "sensors/temperature", "ü"} {
			if !bytes.Equal(s.ID(name), all[0].ID(name)) || !bytes.Equal(s.HashTopic(name), all[0].HashTopic(name)) {
				t.Errorf("%s hashes %q differently from %s", s.Name(), name, all[0].Name())
			}
		}
	}
}
