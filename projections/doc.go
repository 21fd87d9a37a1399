// Package projections builds the read models of the C2 from the event log:
// the key state with the per-client delivery queue (KeyState) and the audit
// trail (Audit). A Runner feeds projections from a store subscription in
// global order; Rebuild replays a log, up to a position or a time, into
// fresh projections.
//
// Reads never touch the store: the HTTP API, the CLI and the delivery worker
// query these models. Replaying the whole log into fresh projections gives
// exactly the state of a running server (a test checks it with a canonical
// Snapshot).
//
// Why the delivery queue lives in KeyState: the effect of a queued command
// depends on the state at its place in the log. Membership changes of a topic
// are serialized with its rotations (same stream), but resetting or removing
// a client is an event of another stream, and so is a C2 key rotation. The
// queue therefore applies each command.queued event in global order: topic
// commands go to the clients that are members at that point, SetC2Key to
// every client registered at that point, and each command is protected with
// the key version the device holds at that point of its FIFO queue. Without
// races this is exactly the recipient list and key versions the event
// names; with races it is the only choice consistent with what the devices
// receive.
//
// Memory: KeyState stores clients and topics in slices indexed by int32,
// with one map from id to index each, sealed keys as single byte slices and
// memberships as []int32 on both sides, with the accepted/confirmed key
// versions of each membership in a parallel slice (sync.go).
// TestKeyStateMemory reports the bytes per client (about 760 B at 100,000
// clients with 10 topics each, of which about 330 B are the sync state).
//
// Sync state: per client, KeyState keeps what the C2 wants the device to
// hold (current client key, C2 pair, topic keys) against what a broker
// accepted and the device's session confirmed, and whether the device was
// seen since its registration (DeviceSync, FleetSummary).
package projections
