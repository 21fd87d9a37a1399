// Package jetstream is the NATS JetStream backend of eventstore.Store, for
// several C2 instances sharing one log on a replicated JetStream cluster,
// through github.com/nats-io/nats.go (its jetstream package).
//
// # Layout
//
// The log is one JetStream stream (Options.Stream, default "E4C2") with
// the subjects "<prefix>.s.>" (Options.SubjectPrefix, default "e4c2").
// Each of our streams is one subject, "<prefix>.s.<token>" where the token
// is the unpadded base64url encoding of the stream name: reversible, and
// free of the characters NATS gives a meaning to ('.', '*', '>', white
// space). Each message is one event, a JSON envelope holding the stream
// name, version, event id, type, metadata, previous chain hash and data.
// The stream denies deletes and purges and keeps every message (no limits),
// and allows atomic batch publish.
//
// The global Position of an event is the JetStream stream sequence of its
// message: one order for the whole log, known to every replica, 1-based
// and gap-free because nothing can delete a message and a refused publish
// takes no sequence. ReadAll reads from sequence `from` through an ordered
// consumer, up to the last sequence the stream leader reports; Subscribe is
// the same ordered consumer left running (catch-up, then live), which
// nats.go recreates from the last delivered sequence after a missed
// heartbeat, a reconnection or a leader change; a sequence delivered twice
// is dropped and a gap is an error. The sealing keyring is the one message
// of a second stream, "<Stream>_KEYRING" (one message per subject: a save
// replaces it).
//
// # Appends
//
// Append reads the last message of the stream's subject from the stream
// leader (its sequence, version and chain hash), checks the expected
// version against it, and publishes the new events with the header
// Nats-Expected-Last-Subject-Sequence set to that sequence (0 for a new
// stream): the server refuses the write if anything reached the stream in
// between, so expected versions hold across processes without serialising
// appends to different streams. Under Any a refused write is retried after
// reading the head again; under an exact version it becomes a
// *ConflictError once the head shows another version.
//
// Several events of one Append go in one atomic batch (Nats-Batch-Id,
// Nats-Batch-Sequence, Nats-Batch-Commit; nats-server 2.12 or later, which
// Open checks): the server stores all of them at consecutive sequences, or
// none. Only the first carries the expected sequence. A batch holds at most
// MaxBatch (1000, the server's default limit) events; a larger Append is
// refused with ErrInvalidEvent. (A single message carrying the whole
// batch would have broken the one-event-one-sequence rule that makes
// positions free.)
//
// # Retries and duplicates
//
// Appends, reads and setup retry transient failures: no responders,
// timeouts, reconnections, "JetStream temporarily unavailable" and other
// 503 answers, an in-flight write on the same subject, an incomplete batch
// after a leader change. Each retry waits a little longer (up to 0.5 s),
// for at most Options.RetryFor (default 30 s) and within the caller's
// context.
//
// A retried publish must not append twice. Every message carries a
// Nats-Msg-Id made of a nonce drawn once per Append and the event's index,
// so the server deduplicates a repeat within its duplicate window (two
// minutes; RetryFor must stay below it). Because an attempt whose answer
// was lost may still have been stored, each later attempt first checks the
// subject's next message after the sequence the earlier attempt expected:
// only that message can be the attempt's first event, so if its message id
// is ours the Append succeeded (its version is read from the message);
// if another message holds the place, the attempt can never be stored.
// The same check runs when the server answers "duplicate" or "wrong last
// sequence", and before a conflict is reported, so that an Append whose
// first answer was lost never reports a conflict with itself.
//
// # Reads and consistency
//
// Stream heads, the last sequence and single messages are read with the
// STREAM.MSG.GET and STREAM.INFO APIs, which the stream leader answers
// (the streams are created without allow_direct, whose answers may come
// from a lagging replica), so a process reads its own writes. Ordered
// consumers may run on a follower; ReadAll and ReadStream know from the
// leader how far they must read and wait for the follower to get there.
// ReadStream reads the subject's messages from the start of the log
// through a filtered consumer (the server's per-subject index makes that
// cheap), which suits the C2's short streams.
//
// # Trade-offs
//
//   - Each Append costs two round trips to the leader (read the head, then
//     publish) plus the replication of the publish; appends to different
//     streams proceed in parallel, appends to one stream are serialised by
//     the expected-sequence check.
//   - Reads create an ephemeral ordered consumer each; a C2 reads mostly
//     through its long-lived subscriptions.
//   - Tampering with stored records cannot be simulated (the log denies
//     deletes), so the storetest Tamper case is skipped, as for esdb; the
//     chains are verified as on every backend. The store is not a
//     eventstore.HeadStore: Verify does not check each stream's last record
//     against a separately kept head.
//   - The keyring's previous version disappears from the stream at once but
//     from the server's files only as it compacts them.
//
// Tests run the conformance suite on an embedded nats-server and on a
// 3-node cluster (replication factor 3) started in the test process, kill
// the stream leader while several writers append, and cut the client's
// connection again and again during appends so that answers are lost in
// flight; every acknowledged event must then be in the log exactly once,
// in each writer's order.
package jetstream
