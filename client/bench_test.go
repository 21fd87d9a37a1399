package client

import (
	"bytes"
	"testing"

	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/standard"
)

// The client's own cost over the suite call it wraps (topic hash, map
// lookup, policy): compare each Client benchmark with its Suite baseline
// from the same run.

func benchEnv(b *testing.B, mode core.Mode) (*env, []byte, []byte) {
	e := newEnv(b, combo{standard.New(), mode})
	self := e.selfPeer()
	k := bytes.Repeat([]byte{0x11}, 32)
	e.setTopicKey("bench/topic", k)
	return e, k, e.protectFrom(self, k, make([]byte, 64), t0)
}

func BenchmarkUnprotectSK(b *testing.B) {
	e, k, msg := benchEnv(b, core.SymKey)
	b.Run("suite-baseline", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.combo.suite.Unprotect(k, msg, t0, core.DefaultWindow()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("client", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := e.c.Unprotect(msg, "bench/topic"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkUnprotectPK(b *testing.B) {
	e, k, msg := benchEnv(b, core.PubKey)
	pub := e.c.SigningPublicKey()
	signer := func([]byte) ([]byte, error) { return pub, nil }
	b.Run("suite-baseline", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := e.pk.UnprotectSigned(k, msg, t0, core.DefaultWindow(), signer); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("client", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := e.c.Unprotect(msg, "bench/topic"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCommand is the whole command path: decrypt, decode, apply
// (copy-on-write of the state), no persistence.
func BenchmarkCommandSetTopicKey(b *testing.B) {
	e, _, _ := benchEnv(b, core.SymKey)
	keys := [][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)}
	cmds := make([][]byte, 2)
	for i, k := range keys {
		c, _ := core.EncodeSetTopicKey(k, e.combo.suite.HashTopic("bench/topic"))
		cmds[i] = e.protectCommand(c)
	}
	i := 0
	for b.Loop() {
		if _, _, err := e.c.Unprotect(cmds[i%2], e.c.ControlTopic()); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
