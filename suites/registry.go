package suites

import (
	"slices"

	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/fips"
	"github.com/e4c2/e4c2/suites/pq"
	"github.com/e4c2/e4c2/suites/standard"
)

// All returns one fresh value of every suite, in the stable order
// standard, fips, pq. The list is explicit (no init() self-registration):
// adding a suite is one line here, reviewed like any other change.
func All() []Suite {
	return []Suite{standard.New(), fips.New(), pq.New()}
}

// Names returns the names of the suites of All, in the same order.
func Names() []string {
	all := All()
	names := make([]string, len(all))
	for i, s := range all {
		names[i] = s.Name()
	}
	return names
}

// ByName returns the suite called name ("standard", "fips" or "pq"). An
// unknown name gives a *core.SuiteError listing the valid names.
func ByName(name string) (Suite, error) {
	for _, s := range All() {
		if s.Name() == name {
			return s, nil
		}
	}
	return nil, &core.SuiteError{Name: name, Valid: Names()}
}

// ForMode returns the suite called name if it supports mode m. A suite
// without m gives a *core.ModeError whose Reason says why; pq refuses SK
// because the SK mode is symmetric AES-256 throughout, already
// quantum-safe, and pq only replaces the public-key part (signatures and
// the command-key agreement). An invalid m gives a *core.ModeError with no
// suite.
func ForMode(name string, m Mode) (Suite, error) {
	if m != SymKey && m != PubKey {
		return nil, &core.ModeError{Mode: m.String()}
	}
	s, err := ByName(name)
	if err != nil {
		return nil, err
	}
	if slices.Contains(s.Modes(), m) {
		return s, nil
	}
	reason := "mode not implemented by this suite"
	if name == "pq" && m == SymKey {
		reason = "SK mode uses only symmetric AES-256, which is already quantum-safe; " +
			"the pq suite only replaces the public-key part (signatures and command-key agreement), " +
			"so use the standard or fips suite for SK"
	}
	return nil, &core.ModeError{Suite: name, Mode: m.String(), Reason: reason}
}
