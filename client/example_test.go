package client_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/standard"
)

// fixed is a pinned clock so that the examples are reproducible.
func fixed() time.Time { return time.Unix(1_700_000_000, 0) }

// A device in SK mode receives a topic key from C2, then protects a
// message; a second device with the same topic key reads it.
func ExampleClient_ProtectMessage() {
	s := standard.New()
	deviceKey := bytes.Repeat([]byte{0x42}, 32) // shared with C2 at provisioning
	dev, err := client.New(client.Config{Suite: s, Mode: core.SymKey, Name: "thermometer-7",
		Key: deviceKey, Clock: fixed})
	if err != nil {
		log.Fatal(err)
	}

	// What C2 sends: SetTopicKey, protected with the device key, on the
	// device's control topic.
	topicKey := bytes.Repeat([]byte{0x17}, 32)
	cmd, _ := core.EncodeSetTopicKey(topicKey, s.HashTopic("home/temperature"))
	protectedCmd, _ := s.Protect(deviceKey, cmd, fixed())
	_, isCommand, err := dev.Unprotect(protectedCmd, dev.ControlTopic())
	fmt.Println("command applied:", isCommand, err == nil)

	msg, err := dev.ProtectMessage([]byte("21.5 C"), "home/temperature")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("protected length:", len(msg)) // 8 (time) + 16 (SIV) + 6

	// Any holder of the topic key can read it.
	plain, _ := s.Unprotect(topicKey, msg, fixed(), core.DefaultWindow())
	fmt.Printf("%s\n", plain)
	// Output:
	// command applied: true true
	// protected length: 30
	// 21.5 C
}

// A device reads application messages and commands through one call; the
// topic tells them apart.
func ExampleClient_Unprotect() {
	s := standard.New()
	key := bytes.Repeat([]byte{0x42}, 32)
	dev, _ := client.New(client.Config{Suite: s, Mode: core.SymKey, Name: "dev", Key: key, Clock: fixed})
	topicKey := bytes.Repeat([]byte{0x17}, 32)
	_ = dev.ApplyCommand(core.Command{Code: core.CmdSetTopicKey, Key: topicKey, TopicHash: s.HashTopic("chat")})

	incoming, _ := s.Protect(topicKey, []byte("hello"), fixed())
	payload, isCommand, err := dev.Unprotect(incoming, "chat")
	fmt.Printf("%s %v %v\n", payload, isCommand, err)

	_, _, err = dev.Unprotect(incoming, "other/topic")
	fmt.Println(errors.Is(err, client.ErrTopicKeyMissing))

	forged := append([]byte{}, incoming...)
	forged[len(forged)-1] ^= 1
	_, _, err = dev.Unprotect(forged, "chat")
	fmt.Println(errors.Is(err, client.ErrNotAuthentic))
	// Output:
	// hello false <nil>
	// true
	// true
}

// In PK mode a device signs its messages; a receiver needs the sender's
// signing key, which C2 sends with SetPubKey.
func ExampleClient_UnprotectMessage() {
	s := standard.New()
	c2, _ := s.GenerateC2Key()
	newDevice := func(name string) *client.Client {
		ident, _ := s.GenerateIdentity()
		c, err := client.New(client.Config{Suite: s, Mode: core.PubKey, Name: name,
			Key: ident.Bytes(), C2PublicKey: c2.PublicKey(), Clock: fixed})
		if err != nil {
			log.Fatal(err)
		}
		return c
	}
	alice, bob := newDevice("alice"), newDevice("bob")
	topicKey := bytes.Repeat([]byte{0x17}, 32)
	for _, d := range []*client.Client{alice, bob} {
		_ = d.ApplyCommand(core.Command{Code: core.CmdSetTopicKey, Key: topicKey, TopicHash: s.HashTopic("chat")})
	}
	msg, _ := alice.ProtectMessage([]byte("hi bob"), "chat")

	_, err := bob.UnprotectMessage(msg, "chat")
	fmt.Println("unknown sender:", errors.Is(err, client.ErrPubKeyNotFound))

	// C2 tells bob alice's signing key (protected with bob's command key).
	cmd, _ := core.EncodeSetPubKey(alice.SigningPublicKey(), alice.ID())
	protectedCmd, _ := s.ProtectCommand(c2, bob.PublicKey(), cmd, fixed())
	if _, _, err := bob.Unprotect(protectedCmd, bob.ControlTopic()); err != nil {
		log.Fatal(err)
	}
	m, err := bob.UnprotectMessage(msg, "chat")
	fmt.Printf("%s verified=%v from alice=%v %v\n", m.Payload, m.Verified, bytes.Equal(m.Sender, alice.ID()), err)
	// Output:
	// unknown sender: true
	// hi bob verified=true from alice=true <nil>
}
