package client

import "fmt"

// State and TopicKeys hold secret keys in exported byte slices, which fmt
// would print under %v, %+v, %#v or %x. Their Format methods print only
// what is not secret, so a stray log line cannot leak a key.

// Format prints the suite, mode, id and key counts, never key bytes.
func (s State) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "client.State{Suite:%s Mode:%s ID:%x Topics:%d PubKeys:%d Key:[redacted]}",
		s.Suite, s.Mode, s.ID, len(s.Topics), len(s.PubKeys))
}

// Format prints a placeholder for every fmt verb.
func (t TopicKeys) Format(f fmt.State, _ rune) {
	_, _ = f.Write([]byte("client.TopicKeys(redacted)"))
}

// Format prints the name, id, mode and state path, never Key or Password.
func (c Config) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "client.Config{Name:%q ID:%x Mode:%s StatePath:%q Key:[redacted] Password:[redacted]}",
		c.Name, c.ID, c.Mode, c.StatePath)
}
