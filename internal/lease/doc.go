// Package lease keeps a duty (delivering commands, firing schedules) with
// exactly one of several C2 instances that share one event log, through a
// lease written to that log with the store's own concurrency control.
//
// # The lease is a stream
//
// Each duty has a stream "lease-<duty>". Its events (lease.acquired.v1,
// lease.renewed.v1, lease.released.v1) carry the holder's instance id, the
// term (one more at every change of holder) and the lease duration T the
// holder promises to respect. Every append names the stream version its
// writer last saw, so of two instances that want the lease at once exactly
// one append succeeds; the other gets eventstore.ErrConflict and stays a
// standby.
//
// # Time without shared clocks
//
// No timestamp is ever compared across machines. The holder renews every
// T/3 and measures its own deadline from the moment it sent its last
// successful append (before the store could have stored it); a standby
// measures T from the moment it first saw the newest lease event (after
// the store stored it). Both use the monotonic clock of their own process,
// so clock skew between machines does not matter, only clock rate, and a
// margin of T/10 covers that and the time the duty needs to stop.
//
// Hence the order that makes "one at a time" true: the holder fences (stops
// its duty) at its send time + 0.9·T unless a renewal succeeded meanwhile,
// while a standby appends acquired no earlier than its observation time + T,
// which is later. A holder whose renewal conflicts has lost the lease (or
// the store's answer to its own append was lost: it reads the stream back
// and keeps the lease if the newest event is its own).
//
// # Bounds
//
// A standby polls the stream every T/8 (a read, nothing written), so after a
// holder dies its duty moves within T + 2·T/8 of the death: 10 s for the
// default T of 8 s. A holder that shuts down cleanly appends released and a
// standby takes over at its next poll.
//
// # Log growth
//
// A renewal is an event: with the default T, one duty writes about 32,400
// renewals a day (two duties: 64,800, each a small JSON payload). The audit
// read model does not keep renewals; the log does (it is append-only and
// hash-chained). A longer T writes proportionally fewer and moves duties
// proportionally later.
package lease
