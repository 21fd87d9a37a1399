package suites

import "github.com/e4c2/e4c2/suites/core"

// The shared definitions live in suites/core so that the suite packages can
// import them; the types are re-exported here for users. The protocol error
// sentinels are not: they have one name, core.ErrX (client re-exports them
// for device code as documented aliases of the same values).
type (
	Suite      = core.Suite
	PKSuite    = core.PKSuite
	Identity   = core.Identity
	C2Key      = core.C2Key
	Mode       = core.Mode
	Window     = core.Window
	Sizes      = core.Sizes
	SuiteError = core.SuiteError
	ModeError  = core.ModeError
)

const (
	SymKey = core.SymKey
	PubKey = core.PubKey
)

// DefaultWindow is the reference timestamp window (10 minutes back, none ahead).
func DefaultWindow() Window { return core.DefaultWindow() }

// ParseMode parses "sk" or "pk".
func ParseMode(s string) (Mode, error) { return core.ParseMode(s) }
