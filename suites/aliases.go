package suites

import "github.com/e4c2/e4c2/suites/core"

// The shared definitions live in suites/core so that the suite packages can
// import them; they are re-exported here for users.
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

var (
	ErrTopicKeyMissing      = core.ErrTopicKeyMissing
	ErrInvalidProtectedLen  = core.ErrInvalidProtectedLen
	ErrTooShortCiphertext   = core.ErrTooShortCiphertext
	ErrInvalidSignature     = core.ErrInvalidSignature
	ErrNotAuthentic         = core.ErrNotAuthentic
	ErrTimestampInFuture    = core.ErrTimestampInFuture
	ErrTimestampTooOld      = core.ErrTimestampTooOld
	ErrPubKeyNotFound       = core.ErrPubKeyNotFound
	ErrInvalidCommand       = core.ErrInvalidCommand
	ErrUnsupportedOperation = core.ErrUnsupportedOperation
	ErrInvalidKey           = core.ErrInvalidKey
	ErrInvalidName          = core.ErrInvalidName
	ErrInvalidTopic         = core.ErrInvalidTopic
	ErrInvalidPassword      = core.ErrInvalidPassword
)

// DefaultWindow is the reference timestamp window (10 minutes back, none ahead).
func DefaultWindow() Window { return core.DefaultWindow() }

// ParseMode parses "sk" or "pk".
func ParseMode(s string) (Mode, error) { return core.ParseMode(s) }
