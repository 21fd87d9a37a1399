// Package storetest is the conformance suite every eventstore.Store backend
// runs: append and read basics, expected-version semantics, racing writers,
// global order and paging, subscriptions that switch from catch-up to live
// while a writer appends, cancellation, Close, reopen, the hash chain and
// the keyring storage.
//
// The suite only uses stream names it makes unique and positions relative
// to the log's head when a test starts, so it also runs against a shared
// server (esdb) that already holds events.
package storetest
