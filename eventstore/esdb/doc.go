// Package esdb is the EventStoreDB (KurrentDB) backend of eventstore.Store,
// for deployments that outgrow one machine, through
// github.com/EventStore/EventStore-Client-Go/v4.
//
// # Design: one log stream
//
// All events of one C2 log go to a single esdb stream (Options.LogStream,
// default "e4c2-log"); each event's user metadata (JSON) carries our stream
// name, stream version, event id, previous chain hash, global position and
// the Metadata fields. The global Position of an event is its revision in
// the log stream plus one, so positions are 1-based and gap-free by
// construction, known at append time, and ReadAll is a plain forward read
// of the log stream from revision from-1.
//
// Appends use esdb's optimistic concurrency on the log stream: the writer
// catches up with the log, checks the expected version of the target
// stream against its client-side index, and appends with the log's current
// revision as the expected revision. If another writer (another process)
// appended meanwhile, esdb refuses the write; the writer catches up and
// checks again, so an exact expected version turns into a *ConflictError
// and Any retries. This gives the same guarantees as the embedded store
// (per-stream expected versions, one global order) across several C2
// instances.
//
// Trade-offs, against writing each of our streams to its own esdb stream
// and numbering $all as it is read:
//   - all appends of one log are serialised by the log stream (the embedded
//     store serialises them too; a C2's write rate is modest);
//   - ReadStream needs a client-side index (stream -> positions and head
//     hash) that each process builds by reading the log once at Open and
//     then tails (8 bytes per event plus a head per stream);
//   - in exchange, positions never need a $all scan, never depend on other
//     applications' events in $all, and cannot shift.
//
// Subscribe uses SubscribeToAll filtered (server side) to the log stream,
// which also excludes system events, from the $all position of the event
// just before the requested one; it checks revisions as they arrive, so a
// duplicate is dropped and a gap is an error.
//
// A subscription dropped by the server or the connection (a restart, a
// leader change) is resubscribed from the next position to deliver after
// a short, growing pause, so the handler sees neither a gap nor a
// duplicate; Subscribe returns the drop only once resubscribing failed for
// 30 s in a row. An append refused by a follower or timed out is retried
// as the very same call (same event ids, same expected revision) for up to
// 10 s: esdb's idempotent writes make a repeat of an append that was in
// fact written succeed without a second copy.
//
// The sealing keyring lives in the stream "$e4c2-keyring" (derived from the
// log stream name); each save appends the new keyring and truncates the
// older entries through the stream's $tb metadata.
//
// The conformance suite runs against a server when E4C2_ESDB_URL is set,
// e.g. "esdb://localhost:2113?tls=false"; the event mapping is unit-tested
// without one.
package esdb
