package ack_test

import (
	"bytes"
	"testing"

	"github.com/e4c2/e4c2/client/ack"
)

func TestParse(t *testing.T) {
	cmd := []byte("a protected command")
	k, d := ack.Parse([]byte(ack.AppliedBody(cmd)))
	if k != ack.Applied || d != ack.Digest(cmd) {
		t.Fatalf("applied: kind %d digest %x", k, d)
	}
	if k, _ := ack.Parse([]byte(ack.HelloBody)); k != ack.Hello {
		t.Fatal("hello not parsed")
	}
	if k, _ := ack.Parse([]byte(ack.OfflineBody)); k != ack.Offline {
		t.Fatal("offline not parsed")
	}
	for _, bad := range []string{"", "e4c2-ack-v1:", "e4c2-ack-v1:applied:zz", "e4c2-ack-v1:applied:" + string(bytes.Repeat([]byte("AB"), 16))} {
		if k, _ := ack.Parse([]byte(bad)); k != ack.Invalid {
			t.Errorf("Parse(%q) = %d", bad, k)
		}
	}
}

func TestTopic(t *testing.T) {
	id := bytes.Repeat([]byte{0xab}, 16)
	got, ok := ack.ParseTopic(ack.Topic(id))
	if !ok || !bytes.Equal(got[:], id) {
		t.Fatalf("round trip %x %v", got, ok)
	}
	for _, bad := range []string{"e4c2ack/", "e4c2ack/AB", "e4/abababababababababababababababab", "e4c2ack/" + string(bytes.Repeat([]byte("AB"), 16))} {
		if _, ok := ack.ParseTopic(bad); ok {
			t.Errorf("ParseTopic(%q) accepted", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(ack.HelloBody))
	f.Add([]byte(ack.AppliedBody([]byte("x"))))
	f.Fuzz(func(t *testing.T, b []byte) {
		ack.Parse(b)
		ack.ParseTopic(string(b))
	})
}
