package pahostore

import (
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

func publish(id uint16) *packets.PublishPacket {
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.TopicName = "e4/abc"
	p.Qos = 2
	p.MessageID = id
	p.Payload = []byte("payload")
	return p
}

// The point of the store: what Get returns is never the object Put was
// given, so paho's resume can set DUP on it while the original is written.
func TestGetReturnsAFreshCopy(t *testing.T) {
	s := New()
	s.Open()
	orig := publish(7)
	s.Put("o.7", orig)
	got, ok := s.Get("o.7").(*packets.PublishPacket)
	if !ok {
		t.Fatalf("Get returned %T, want a publish", s.Get("o.7"))
	}
	if got == orig {
		t.Fatal("Get returned the object given to Put")
	}
	if got.MessageID != 7 || got.TopicName != "e4/abc" || string(got.Payload) != "payload" || got.Qos != 2 || got.Dup {
		t.Fatalf("decoded %+v, want the packet put", got.Details())
	}
	got.Dup = true
	orig.Payload[0] = 'X'
	again := s.Get("o.7").(*packets.PublishPacket)
	if again.Dup || string(again.Payload) != "payload" {
		t.Fatal("the stored packet changed with an object outside the store")
	}
}

func TestKeysDeleteResetAndClose(t *testing.T) {
	s := New()
	s.Open()
	s.Put("o.2", publish(2))
	s.Put("o.1", publish(1))
	if got := s.All(); len(got) != 2 || got[0] != "o.1" || got[1] != "o.2" {
		t.Fatalf("All = %v", got)
	}
	s.Del("o.1")
	if s.Get("o.1") != nil {
		t.Fatal("deleted key still answers")
	}
	s.Close()
	if s.Get("o.2") != nil || s.All() != nil {
		t.Fatal("a closed store answered")
	}
	s.Put("o.3", publish(3))
	s.Open()
	if got := s.All(); len(got) != 1 || got[0] != "o.2" {
		t.Fatalf("after reopen All = %v, want the message kept across Close only", got)
	}
	s.Reset()
	if len(s.All()) != 0 {
		t.Fatal("Reset kept messages")
	}
}

func TestUnknownKey(t *testing.T) {
	s := New()
	s.Open()
	if s.Get("o.9") != nil {
		t.Fatal("unknown key answered")
	}
}
