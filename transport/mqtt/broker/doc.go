// Package broker is the MQTT broker that an E4 C2 embeds by default: a
// mochi-mqtt server on a loopback TCP listener (optionally TLS) with an
// access-control hook that reserves the E4 control topics ("e4/#") to the C2.
//
// Two things differ from a stock mochi server, both for robustness:
//
//   - The TCP listener is our own (Listener). mochi's listener returns from
//     its accept loop on the first accept error, so a burst of EMFILE (too
//     many open files) silently stops the broker from ever accepting again.
//     Ours backs off and retries like net/http's Server.Serve, and it caps
//     concurrent connections below the process file limit, closing extra
//     connections at once instead of letting the process run out of
//     descriptors.
//   - Only the C2 may publish on "e4/#": either in process (Broker.Publish,
//     which bypasses the network and the ACL) or as a TCP client that
//     authenticated with the configured C2 credentials. Anybody else who
//     could publish there could not forge a command (commands are
//     authenticated with keys the devices hold), but could flood devices
//     with garbage and replay captured commands within their timestamp
//     window, so the broker refuses it.
//
// And three repairs of mochi v2.7.9 that per-client FIFO delivery needs
// (each with a test that fails without it):
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
//     persistHook restores both.
package broker
