package projections_test

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/internal/eventcodec"
	"github.com/e4c2/e4c2/suites/core"
)

// fakeSealer is AES-256-GCM with a counter nonce: real sealing cost and
// size (28 bytes of overhead), deterministic output.
type fakeSealer struct {
	aead cipher.AEAD
	n    uint64
}

func newFakeSealer() *fakeSealer {
	b, _ := aes.NewCipher(make([]byte, 32))
	a, _ := cipher.NewGCM(b)
	return &fakeSealer{aead: a}
}

func (f *fakeSealer) Seal(p, ad []byte) ([]byte, error) {
	f.n++
	nonce := make([]byte, 12)
	binary.LittleEndian.PutUint64(nonce, f.n)
	return f.aead.Seal(nonce, nonce, p, ad), nil
}

func (f *fakeSealer) Open(s, ad []byte) ([]byte, error) {
	return f.aead.Open(nil, s[:12], s[12:], ad)
}

// logGen produces a synthetic log record by record, with real encodings
// and sealed keys, without a store.
type logGen struct {
	sealer  *fakeSealer
	pos     uint64
	streams map[string]uint64
	t       time.Time
	emit    func(eventstore.Record)
	key     []byte
	// chain fills PrevHash as a store would (needed to import the log).
	chain bool
	heads map[string][32]byte
}

func newLogGen(emit func(eventstore.Record)) *logGen {
	return &logGen{sealer: newFakeSealer(), streams: map[string]uint64{}, emit: emit,
		t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), key: make([]byte, 32)}
}

func (g *logGen) add(stream string, ev domain.Event) {
	g.streams[stream]++
	v := g.streams[stream]
	g.pos++
	g.t = g.t.Add(time.Millisecond)
	data, err := eventcodec.Encode(ev, stream, v, g.sealer)
	if err != nil {
		panic(err)
	}
	var idb [16]byte
	binary.BigEndian.PutUint64(idb[8:], g.pos)
	r := eventstore.Record{
		EventData: eventstore.EventData{ID: hex.EncodeToString(idb[:]), Type: ev.EventType().WireName(), Data: data,
			Meta: eventstore.Metadata{Time: g.t, Actor: "system", Suite: "standard", Mode: "sk"}},
		Stream: stream, Version: v, Position: g.pos,
	}
	if g.chain {
		if g.heads == nil {
			g.heads = map[string][32]byte{}
		}
		r.PrevHash = g.heads[stream]
		g.heads[stream] = eventstore.HashRecord(&r)
	}
	g.emit(r)
}

func clientName(i int) string { return fmt.Sprintf("device-%06d", i) }
func topicName(i int) string  { return fmt.Sprintf("plant/line-%04d/telemetry", i) }

// population registers clients and topics and links each client to
// perTopic topics (no commands queued).
func (g *logGen) population(clients, topics, perClient int) {
	for i := range topics {
		h := domain.TopicHash(topicName(i))
		g.add(domain.TopicStream(h), &domain.TopicCreated{Topic: h, Name: topicName(i), Key: domain.NewSecret(g.key)})
	}
	for i := range clients {
		id := domain.ClientID(clientName(i))
		g.add(domain.ClientStream(id), &domain.ClientRegistered{Client: id, Name: clientName(i),
			Role: domain.Role(1 + i%3), Key: domain.NewSecret(g.key)})
		for j := range perClient {
			h := domain.TopicHash(topicName((i*perClient + j) % topics))
			g.add(domain.TopicStream(h), &domain.TopicClientLinked{Topic: h, Client: id})
		}
	}
}

// traffic adds operations with commands until the log holds total
// records: links with SetTopicKey, rotations to every member, and the
// delivery of every queued command.
func (g *logGen) traffic(clients, topics, total int) {
	i := 0
	for int(g.pos) < total {
		i++
		ti := i % topics
		h := domain.TopicHash(topicName(ti))
		ts := domain.TopicStream(h)
		if i%50 == 0 {
			// Rotation with its fan-out.
			g.add(ts, &domain.TopicKeyRotated{Topic: h, Key: domain.NewSecret(g.key)})
			kv := g.streams[ts]
			var rs []domain.Recipient
			for c := ti; c < clients && len(rs) < 10; c += topics {
				rs = append(rs, domain.Recipient{Client: domain.ClientID(clientName(c)), KeyVersion: 1})
			}
			g.add(ts, &domain.CommandQueued{Code: core.CmdSetTopicKey, Topic: h, TopicKeyVersion: kv, Recipients: rs})
			ref := g.pos
			for j, r := range rs {
				g.add(domain.DeliveryStream(r.Client), &domain.CommandDelivered{Client: r.Client, Ref: refOf(ref, j)})
			}
			continue
		}
		c := domain.ClientID(clientName(i % clients))
		g.add(ts, &domain.TopicClientLinked{Topic: h, Client: c})
		g.add(ts, &domain.CommandQueued{Code: core.CmdSetTopicKey, Topic: h, TopicKeyVersion: 1,
			Recipients: []domain.Recipient{{Client: c, KeyVersion: 1}}})
		g.add(domain.DeliveryStream(c), &domain.CommandDelivered{Client: c, Ref: refOf(g.pos, 0)})
	}
}

func refOf(pos uint64, idx int) domain.QueueRef {
	var idb [16]byte
	binary.BigEndian.PutUint64(idb[8:], pos)
	return domain.QueueRef{Event: domain.ID(idb), Index: uint32(idx)}
}
