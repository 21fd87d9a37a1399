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
// Device front end (front.go, frontsession.go, poll_linux.go): mochi runs
// two goroutines per connection, whose stacks alone cost 20-25 KB per
// device, so MQTT 3.1.1 connections of devices (a device id as username)
// are served by our own session code instead. The accept path reads the
// CONNECT itself; every other connection (MQTT 5 devices included) goes to
// mochi with the bytes already read replayed. A device session is still a
// mochi client in mochi's client table, but without a connection, so
// routing, the ACL, the persistence file, expiry, take-over order and
// Deliver's correlation run on mochi's data through the same hooks: mochi
// queues a QoS 1/2 message in the client's in-flight table as for an
// offline client, and our last hook writes it to the device (from the
// publisher's goroutine, under the session's write lock, with a write
// deadline); QoS 0 messages come through one inline subscription on "#".
// Packets from a device go into mochi with InjectPacket, and the replies
// mochi would have written are written by the session. On Linux an idle
// device has no goroutine at all: the connection waits in an epoll
// instance of the front end's, and gets a goroutine only while it has
// packets to process (a goroutine blocked in a read keeps a 4 KB stack at
// least once it has done any real work); one sweep a few times a second
// enforces their keepalive. TLS connections keep one goroutine each (the
// TLS layer buffers what epoll cannot see). A take-over waits, bounded,
// for the old connection's packet in progress, and a clean one holds the
// in-process publish gate until the new client is in mochi's table.
//
// Memory: BenchmarkIdleDeviceMemory measures the broker's RSS per
// connected device next to mosquitto's (benchmarks/README.md has the
// figures and their breakdown): about 8.5 KB per idle device and 9.3 KB
// per device that got a command, nearly all heap (mochi's client record
// and subscription map, 3.3 KB of it), next to mosquitto's 1.2 KB.
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
