package client

import (
	"fmt"
	"time"

	"github.com/e4c2/e4c2/suites/core"
)

// DefaultTransition is how long the previous key of a topic stays usable
// after SetTopicKey replaced it (the reference's MaxDelayKeyTransition).
const DefaultTransition = 60 * time.Minute

// MissingKeyPolicy says what ProtectMessage and Unprotect do with an
// application message on a topic the client has no key for.
type MissingKeyPolicy int

const (
	// RejectMissingKey (the default) fails with ErrTopicKeyMissing.
	RejectMissingKey MissingKeyPolicy = iota
	// PassthroughMissingKey sends and accepts application messages on
	// topics without a key unprotected: ProtectMessage returns the payload
	// as is and Unprotect returns the received bytes as the payload.
	//
	// Risk: this turns "no key yet" into "no security" silently. A topic
	// whose key was never delivered, or was removed by RemoveTopic, is then
	// published in clear and anyone on the broker can inject messages
	// into it. Use it only while migrating a fleet topic by topic, and
	// check HasTopicKey where it matters. Topics that do have a key never
	// fall back to clear text: a message that fails to decrypt is an
	// error. The control topic is never affected.
	PassthroughMissingKey
)

// UnknownSignerPolicy says what Unprotect does in PK mode with a message
// whose sender id has no public key in the client's table.
type UnknownSignerPolicy int

const (
	// RejectUnknownSigner (the default) fails with ErrPubKeyNotFound.
	RejectUnknownSigner UnknownSignerPolicy = iota
	// AcceptUnknownSignerUnverified decrypts messages from unknown senders
	// with the topic key WITHOUT checking their signature; Message.Verified
	// is false for them.
	//
	// Risk: the sender id of such a message is whatever the sender wrote:
	// any holder of the topic key can claim to be anyone not in the table,
	// so PK mode degrades to SK-mode guarantees for those messages (topic
	// key confidentiality and integrity, no sender authenticity). Messages
	// that name a KNOWN sender are always verified and rejected on a bad
	// signature. The suite must either implement UnverifiedOpener or use a
	// PK layout that embeds its SK layout (checked once by New); otherwise
	// New refuses the policy with ErrUnsupportedOperation.
	AcceptUnknownSignerUnverified
)

// Config describes a new client. Suite, Mode and either Name or ID are
// required, and an identity: Key or Password. PK mode also needs
// C2PublicKey. Zero values of the other fields mean the defaults.
type Config struct {
	// Suite fixes every primitive; PK mode needs a core.PKSuite.
	Suite core.Suite
	// Mode is core.SymKey or core.PubKey.
	Mode core.Mode
	// Name of the client (its id is Suite.ID(Name)), or its 16-byte ID.
	// When both are set they must agree.
	Name string
	ID   []byte
	// Key is the identity key: SK, the symmetric key shared with C2
	// (Sizes().Key bytes); PK, the private identity as the suite's
	// ParseIdentity reads it (what SetIdKey carries).
	Key []byte
	// Password derives the identity instead of Key with Suite.DeriveKey
	// (SK: the key; PK: the identity seed). The standard suite's derivation
	// is the reference's unsalted Argon2i, which is weak; prefer random keys.
	Password string
	// C2PublicKey is the C2 public key (PK mode only, required there).
	C2PublicKey []byte
	// StatePath, when set, is the file the state is persisted to. New
	// refuses to overwrite an existing file (use Load).
	StatePath string
	// Clock returns the current time; default time.Now. Inject it in tests.
	Clock func() time.Time
	// Window is the timestamp acceptance window; zero means
	// core.DefaultWindow() (10 minutes back, nothing ahead), a zero MaxAge
	// alone means 10 minutes.
	Window core.Window
	// Transition is how long a replaced topic key stays usable; zero means
	// DefaultTransition.
	Transition time.Duration
	// MissingKey and UnknownSigner are the policies; the zero values are
	// the strict defaults.
	MissingKey    MissingKeyPolicy
	UnknownSigner UnknownSignerPolicy
}

// Option changes the runtime settings of a Config; Load and
// ImportE4GoState take options because the identity comes from the file.
type Option func(*Config)

// WithSuite sets the suite (required by Load and ImportE4GoState).
func WithSuite(s core.Suite) Option { return func(c *Config) { c.Suite = s } }

// WithClock injects the clock.
func WithClock(now func() time.Time) Option { return func(c *Config) { c.Clock = now } }

// WithWindow sets the timestamp acceptance window.
func WithWindow(w core.Window) Option { return func(c *Config) { c.Window = w } }

// WithTransition sets the key transition period.
func WithTransition(d time.Duration) Option { return func(c *Config) { c.Transition = d } }

// WithMissingKeyPolicy sets the policy for topics without a key.
func WithMissingKeyPolicy(p MissingKeyPolicy) Option { return func(c *Config) { c.MissingKey = p } }

// WithUnknownSignerPolicy sets the PK policy for unknown senders.
func WithUnknownSignerPolicy(p UnknownSignerPolicy) Option {
	return func(c *Config) { c.UnknownSigner = p }
}

// WithStatePath sets the state file (ImportE4GoState: where to persist the
// imported state; Load: set by Load itself).
func WithStatePath(path string) Option { return func(c *Config) { c.StatePath = path } }

// settings are the runtime settings of a client, resolved from a Config.
type settings struct {
	suite         core.Suite
	pk            core.PKSuite // nil in SK mode
	mode          core.Mode
	sizes         core.Sizes
	statePath     string
	clock         func() time.Time
	window        core.Window
	transition    time.Duration
	missingKey    MissingKeyPolicy
	unknownSigner UnknownSignerPolicy
}

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// resolve checks the runtime part of cfg and fills in defaults.
func resolve(cfg *Config) (*settings, error) {
	if cfg.Suite == nil {
		return nil, configErr("no suite")
	}
	s := &settings{suite: cfg.Suite, mode: cfg.Mode, sizes: cfg.Suite.Sizes(), statePath: cfg.StatePath,
		clock: cfg.Clock, window: cfg.Window, transition: cfg.Transition,
		missingKey: cfg.MissingKey, unknownSigner: cfg.UnknownSigner}
	supported := false
	for _, m := range cfg.Suite.Modes() {
		supported = supported || m == cfg.Mode
	}
	if cfg.Mode != core.SymKey && cfg.Mode != core.PubKey {
		return nil, configErr("mode must be sk or pk")
	}
	if !supported {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig,
			&core.ModeError{Suite: cfg.Suite.Name(), Mode: cfg.Mode.String(), Reason: "not one of the suite's modes"})
	}
	if cfg.Mode == core.PubKey {
		pk, ok := cfg.Suite.(core.PKSuite)
		if !ok {
			return nil, configErr("suite %s does not implement PK mode", cfg.Suite.Name())
		}
		s.pk = pk
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.window.MaxAge < 0 || s.window.MaxSkew < 0 {
		return nil, configErr("negative timestamp window")
	}
	if s.window.MaxAge == 0 {
		s.window.MaxAge = core.DefaultWindow().MaxAge
	}
	if s.transition < 0 {
		return nil, configErr("negative transition period")
	}
	if s.transition == 0 {
		s.transition = DefaultTransition
	}
	if s.missingKey != RejectMissingKey && s.missingKey != PassthroughMissingKey {
		return nil, configErr("unknown missing-key policy %d", s.missingKey)
	}
	if s.unknownSigner != RejectUnknownSigner && s.unknownSigner != AcceptUnknownSignerUnverified {
		return nil, configErr("unknown unknown-signer policy %d", s.unknownSigner)
	}
	return s, nil
}
