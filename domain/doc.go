// Package domain holds the C2 aggregates of docs/PROTOCOL.md section 9 as pure
// decide functions: a Command and a State view go in, events come out. It
// does no I/O, reads no clock and draws no randomness: keys, times and ids
// are passed in by the caller (the c2 service), so a decision can be replayed
// and tested byte for byte.
//
// # Decide and evolve
//
// Decide is the decide function of every aggregate (client, topic, C2 key
// pair, API token, delivery outcome): it reads a State view and returns a
// Decision, the events to append to one stream at one expected version.
// The evolve side is projections.KeyState.Apply, which folds the events of
// every aggregate in global order into a compact read model and exposes the
// views Decide takes (ClientView, TopicView, C2View, TokenView). Keeping a
// single fold avoids a second copy of the state per aggregate.
//
// # Streams
//
// Each aggregate owns one stream, so that operations on different
// aggregates never contend on the store's expected version:
//
//	client-<hex id>     client.registered/removed/key_rotated/topics_reset,
//	                    plus the commands those queue (SetIdKey, ResetTopics,
//	                    ResetPubKeys, SetPubKey, RemovePubKey) and those a
//	                    resync queues (SetIdKey, SetC2Key, SetPubKey,
//	                    RemovePubKey, SetTopicKey)
//	topic-<hex hash>    topic.created/key_rotated/removed and topic membership
//	                    (topic.client_linked/unlinked), plus the commands they
//	                    queue: one command.queued event lists every recipient
//	                    of a rotation or removal
//	c2key               c2key.generated (PK mode) and the SetC2Key fan-out
//	token-<hex hash>    token.created/revoked (hash = SHA3-256(name)[:16])
//	delivery-<hex id>   command.delivered ("accepted": a broker took it),
//	                    command.confirmed (the device's own session took it),
//	                    command.failed, device.seen (first connection after
//	                    a registration) and device.released (an operator let
//	                    an external broker have the commands of a device
//	                    never seen) for one client, appended with
//	                    eventstore.Any: outcomes need no decision, and keeping
//	                    them out of client-<id> keeps the delivery worker from
//	                    contending with operators
//
// Membership lives in the topic stream because a link, a rotation and a
// removal of one topic must be serialized: a client linked concurrently with
// a rotation must not keep the old key. Resetting or removing a client is an
// event of the client stream that the projections apply to every topic; the
// store's global order is the serialization order of the two streams.
//
// # Key versions
//
// A key version is the stream version of the event that holds the key:
// (client-<id>, v) names a client key, (topic-<hash>, v) a topic key and
// (c2key, v) a C2 key pair. A queued command names its arguments and its
// protecting key by such versions, never by value: the key bytes stay sealed
// in the one event that introduced them, and the delivery worker opens them
// when it publishes (E4 commands carry a timestamp, so they are protected at
// publish time, not at decision time).
//
// # Secrets and storage
//
// Key material in an event is a Secret: clear in a fresh decision, sealed
// once stored. How events are encoded, sealed and stored is not this
// package's business: internal/eventcodec maps events to stored records
// (a compact binary form, each Secret sealed under the associated data
// that binds it to its stream, version and wire type) and back. Keeping
// the arrow one-way (eventcodec imports domain and the store, domain
// imports neither) lets the decide layer be tested without any storage;
// a test of this package fails if it ever reaches an eventstore package.
//
// Wire names of events are versioned strings mapped in one table (see
// catalogue in events.go); Go type names never reach the log.
package domain
