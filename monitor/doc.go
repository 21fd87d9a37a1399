// Package monitor watches the traffic the C2 secures. It is optional (off
// by default, `serve --monitor` or the "monitor" section of the
// configuration) and fed by a Source: the embedded broker's publish hook,
// or an MQTT shared subscription ($share/e4c2-monitor/<topic>) on an
// external broker, so that several C2 instances split the work.
//
// # Classification
//
// Every message on a managed topic gets exactly one class, decided in this
// order (the first step that concludes wins):
//
//  1. plaintext: the payload is valid UTF-8 without NUL and at least 95%
//     printable (JSON, text). No protected message can pass: its first 8
//     bytes are a little-endian Unix time whose upper bytes are zero until
//  2106. Binary clear payloads are not recognised and end up forged.
//  2. structure: too short for the layout of the suite and mode: forged.
//  3. PK only, the signer: the sender id names no registered client:
//     unknown_signer; the signature does not verify: forged; it verifies
//     but the signer is not linked to the topic: not_member; it is linked
//     with the role consumer: consumer_publish. The signer is judged
//     before the keys, since a non-member usually holds no topic key.
//  4. keys, tried newest first: the current key (current), the previous
//     one while the transition period after the rotation lasts
//     (previous), the previous one after it or any older one up to
//     Config.OlderKeys (old_key: a device that missed a rotation; the
//     finding carries the key version it still uses and, when the
//     publisher is known, the device-truth view of that topic's key: the
//     version the C2 wants it to hold and the ones it has evidence of).
//     No key opens it: forged (forged or corrupted).
//     Authenticity is checked with the suite's own Unprotect, given the
//     message's timestamp as "now", so the timestamp cannot mask the
//     answer.
//  5. timestamp, for an authentic message: older than the receivers'
//     window (MaxAge): stale; ahead of it (MaxSkew): future.
//  6. replay, for an authentic message in the window: its digest
//     (maphash, per-process seed, over the whole protected message) was
//     seen on the topic before: replay. The digest set is bounded per
//     topic (Config.ReplayCapacity) and forgets digests once their window
//     is over (a replay after that is stale).
//
// # Aggregation, rates and cost
//
// Findings (every class but current and previous, plus rate_spike,
// rate_drop and sampled) are counted per kind, topic and publisher (the
// broker's authenticated publisher when the source knows it, else the PK
// signer: a signed message may be republished by another client, named
// in the detail) in
// windows that open at the first occurrence and close Config.FindingWindow
// later; each closed window is one monitor.finding.v1 event appended
// through the service with the actor "monitor". The audit, the time-travel
// replay, SSE and automation rules see them like any other event.
//
// The rate of each topic is counted in buckets (Config.RateBucket) and
// judged against a baseline: EWMA mean and variance of the bucket counts;
// a bucket outside mean ± max(K·stddev, MinDelta) is a spike or a drop
// (see Baseline).
//
// Sources hand messages over with Offer, which never blocks: the queue is
// bounded in messages and in payload bytes, and a message that finds it
// full is not classified but counted (Stats.Dropped, the sampled finding,
// e4c2_monitor_dropped_total): the monitor then says it is sampling
// rather than falling behind.
//
// # What is never stored
//
// The monitor never keeps, logs or records a payload, a plaintext or a
// key. A payload is read while it is classified and dropped; the
// plaintext a key opens is discarded at once; topic keys are held in
// memory only (fetched from the service when a topic's key version
// changes, wiped when replaced). Findings carry ids, counts, key versions,
// time windows and a short reason.
package monitor
