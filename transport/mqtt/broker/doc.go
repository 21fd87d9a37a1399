// Package broker is the MQTT broker that an E4 C2 embeds by default: a
// mochi-mqtt server on a loopback TCP listener (optionally TLS) that knows
// which connection is which device, so that only the right device gets the
// right messages, and that tells the C2 when a device is reachable and when
// it really has a command.
//
// Who may do what (auth.go):
//
//   - A client whose username is a device id (the lower-case hex of its 16
//     bytes) is a device. It must use the client id "e4dev-" + username and
//     its credential (package client/credential) must pass the C2's
//     Authority; the broker never verifies passwords itself. Client ids
//     starting with "e4dev-" are reserved to their device, since the client
//     id selects a persistent session with its queued commands. A device
//     reads its own control topic "e4/<id>" and the exact topics the
//     Authority allows (no wildcards, no other control topic), and publishes
//     where the Authority allows, never on "e4/#" (its will included).
//   - The C2 (in process, or over TCP with Config.C2) may do anything.
//   - Static Config.Users, and anonymous clients in the legacy
//     AllowAnonymous mode, use any topic but the control topics; anonymous
//     clients may otherwise only read Config.AnonymousReadTopics. By
//     default nobody but the C2 connects.
//
// mochi asks the ACL both when a client subscribes (the filter) and when it
// delivers a message (the topic name), so a wildcard subscription that the
// ACL let through still receives no control message.
//
// Presence and confirmed delivery (devices.go): Config.Observer hears a
// device come online (subscribed to its control topic, also through a
// resumed session) and go offline; Broker.Deliver publishes a command and
// returns once the device's own session completed the QoS 2 exchange
// (its PUBCOMP), correlating mochi's packet ids through its hooks.
//
// Limits (expiry.go and Config): packet size, per-client queues, and the
// expiry of disconnected sessions, shorter for non-device clients; expired
// sessions leave the persistence file as well.
//
// Memory: mochi runs two goroutines per connection. The reader stays
// parked about 5.5 KB deep (mochi's attachClient and Client.Read frames)
// after processing a packet has grown its stack to 16 KB (mochi's own
// frames reach 13.6 KB for a SUBSCRIBE), which the runtime can then never
// shrink; the writer idles 2.2 KB deep, in 4 KB until it writes its first
// PUBLISH and in 8 KB for good after. That is about 20 KB of stack per
// idle device and 24.6 KB per device that got a command, whatever the
// broker's settings or where our hooks do their work. The settings only
// remove what mochi allocated per connection on top (a 64 KB write
// channel, 4 KB of buffers): BenchmarkIdleDeviceMemory measures the
// result next to mosquitto, and benchmarks/README.md has the breakdown.
//
// The TCP listener is our own (Listener). mochi's listener returns from
// its accept loop on the first accept error, so a burst of EMFILE (too
// many open files) silently stops the broker from ever accepting again.
// Ours backs off and retries like net/http's Server.Serve, and it caps
// concurrent connections below the process file limit, closing extra
// connections at once instead of letting the process run out of
// descriptors.
//
// And repairs of mochi v2.7.9 that per-client FIFO delivery, a bounded
// store and a clean shutdown need (each with a test that fails without it,
// but for the shutdown hang, a narrow race that TestCloseWhileClientsLeave
// only exercises):
//
//   - A reconnecting persistent session gets its queued messages resent in
//     random order within each second (mochi sorts them by a seconds
//     timestamp over a map); orderHook re-stamps them into queue order.
//   - A session take-over races publishes to that client (messages lost or
//     overtaking the resend); in-process publishes wait at a gate held
//     during the take-over.
//   - The bbolt persistence (Config.PersistPath) drops the packet id of
//     stored in-flight messages (all but one lost after a restart) and
//     never records PUBREL (acknowledged messages resent after a restart);
//     persistHook restores both. It also stored refused subscriptions,
//     which a restart turned into real ones.
//   - mochi's session expiry left an expired session's subscriptions in
//     memory and everything but the client record in the store.
//   - Closing the broker could hang for good (mochi read-locks its client
//     table twice in a row while clients remove themselves).
package broker
