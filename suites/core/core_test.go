package core

import (
	"errors"
	"testing"
	"time"
)

func TestCheckTimestampEdges(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	w := Window{MaxAge: 10 * time.Minute, MaxSkew: 5 * time.Second}
	msg := make([]byte, 8)
	cases := []struct {
		ts   time.Time
		want error
	}{
		{now, nil},
		{now.Add(-10 * time.Minute), nil},
		{now.Add(-10*time.Minute - time.Second), ErrTimestampTooOld},
		{now.Add(5 * time.Second), nil},
		{now.Add(6 * time.Second), ErrTimestampInFuture},
	}
	for _, c := range cases {
		PutTimestamp(msg, c.ts)
		if err := CheckTimestamp(msg, now, w); !errors.Is(err, c.want) && !(err == nil && c.want == nil) {
			t.Errorf("ts %v: got %v, want %v", c.ts, err, c.want)
		}
	}
	if err := CheckTimestamp(msg[:7], now, w); !errors.Is(err, ErrInvalidProtectedLen) {
		t.Errorf("short: got %v", err)
	}
}

func TestValidateTopicAndName(t *testing.T) {
	for _, bad := range []string{"", "a/+", "a/#", "$SYS/x", "\xff"} {
		if err := ValidateTopic(bad); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("ValidateTopic(%q) = %v", bad, err)
		}
	}
	if err := ValidateTopic("sensors/temp"); err != nil {
		t.Error(err)
	}
	if err := ValidateName(string(make([]byte, 256))); !errors.Is(err, ErrInvalidName) {
		t.Error("256-byte name accepted")
	}
	if got := ControlTopic([]byte{0xAB, 0x01}); got != "e4/ab01" {
		t.Errorf("ControlTopic = %q", got)
	}
}
