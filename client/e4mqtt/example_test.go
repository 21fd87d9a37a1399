package e4mqtt_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/e4c2/e4c2/client"
	"github.com/e4c2/e4c2/client/credential"
	"github.com/e4c2/e4c2/client/e4mqtt"
	"github.com/e4c2/e4c2/suites/core"
	"github.com/e4c2/e4c2/suites/standard"
	"github.com/e4c2/e4c2/transport/mqtt/broker"
)

// exampleBroker stands for the C2's embedded broker: it admits only devices
// that present their E4 device credential (package client/credential) for
// a key it knows. The C2 does the same with the keys it registered.
type exampleBroker map[[16]byte][]byte // device id -> SK identity key

func (a exampleBroker) Authenticate(username string, password []byte) ([16]byte, bool) {
	id, ok := credential.ParseUsername(username)
	return id, ok && a[id] != nil && credential.VerifySK(a[id], id[:], password)
}
func (a exampleBroker) MaySubscribe([16]byte, string) bool { return true }
func (a exampleBroker) MayPublish([16]byte, string) bool   { return true }

// Two SK devices exchange a protected message through a broker. In a
// deployment the identity keys come from e4c2 keygen (client.ReadKeyFile),
// the devices are registered with e4c2 client add, and the topic key
// arrives from the C2 as a SetTopicKey command once e4c2 attach links them;
// here the example provisions the topic key itself (ApplyCommand) to run
// without a C2.
func Example() {
	s := standard.New()
	newDevice := func(name string) *client.Client {
		key, err := s.GenerateKey()
		if err != nil {
			log.Fatal(err)
		}
		c, err := client.New(client.Config{Suite: s, Mode: core.SymKey, Name: name, Key: key})
		if err != nil {
			log.Fatal(err)
		}
		return c
	}
	sensor, display := newDevice("sensor"), newDevice("display")

	auth := exampleBroker{}
	for _, c := range []*client.Client{sensor, display} {
		auth[[16]byte(c.ID())] = c.State().Key
	}
	b, err := broker.New(broker.Config{Address: "127.0.0.1:0", Authority: auth})
	if err != nil {
		log.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	// What the C2 would send with e4c2 attach: the same topic key to both.
	topicKey, _ := s.GenerateKey()
	for _, c := range []*client.Client{sensor, display} {
		cmd := core.Command{Code: core.CmdSetTopicKey, TopicHash: s.HashTopic("home/temp"), Key: topicKey}
		if err := c.ApplyCommand(cmd); err != nil {
			log.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	received := make(chan e4mqtt.Message, 1)
	// No Username: each device presents its E4 device credential, which is
	// what the C2's embedded broker requires.
	dd, err := e4mqtt.Connect(ctx, display, e4mqtt.Config{
		BrokerURL: "tcp://" + b.Addr(),
		OnMessage: func(m e4mqtt.Message) {
			if !m.Command {
				received <- m
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer dd.Close()
	if err := dd.Subscribe(ctx, "home/temp"); err != nil {
		log.Fatal(err)
	}
	sd, err := e4mqtt.Connect(ctx, sensor, e4mqtt.Config{BrokerURL: "tcp://" + b.Addr()})
	if err != nil {
		log.Fatal(err)
	}
	defer sd.Close()
	if err := sd.Publish(ctx, "home/temp", []byte("21.5 C")); err != nil {
		log.Fatal(err)
	}

	select {
	case m := <-received:
		fmt.Printf("display got %q on %s (err %v)\n", m.Payload, m.Topic, m.Err)
	case <-ctx.Done():
		fmt.Println("nothing received")
	}
	// Output: display got "21.5 C" on home/temp (err <nil>)
}
