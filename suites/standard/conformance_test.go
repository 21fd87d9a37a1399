package standard_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/standard"
	"github.com/e4c2/e4c2/suites/suitetest"
)

func TestConformance(t *testing.T) { suitetest.Run(t, standard.New()) }

// The zero Suite works without the key cache and gives the same bytes.
func TestZeroValueSuite(t *testing.T) {
	v := loadVectors(t)
	nonEmpty(t, "sk_messages", len(v.SKMessages))
	var s standard.Suite
	for _, tc := range v.SKMessages {
		ts := time.Unix(tc.Timestamp, 0)
		p, err := s.Protect(tc.TopicKey, tc.Plaintext, ts)
		if err != nil || !bytes.Equal(p, tc.Protected) {
			t.Fatalf("%s: Protect = %x, %v", tc.Description, p, err)
		}
		got, err := s.Unprotect(tc.TopicKey, p, ts, core.DefaultWindow())
		check(t, tc.Unprotect, got, err)
	}
	s.Forget(v.SKMessages[0].TopicKey) // no cache: must not panic
}
