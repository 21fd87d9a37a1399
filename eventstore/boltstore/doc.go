// Package boltstore is the embedded default eventstore.Store: one file on
// go.etcd.io/bbolt, durable (every commit is fsynced by bolt), with group
// commit so that many concurrent writers share one transaction and one
// fsync.
//
// File layout (buckets):
//
//	events   8-byte big-endian global position -> record (compact binary)
//	streams  uvarint(len(stream)) || stream || 8-byte BE version -> 8-byte BE position
//	heads    stream -> 8-byte BE version || SHA-256 chain hash of the last record
//	keyring  "keyring" -> the sealing keyring (mutable, beside the log)
//	meta     "format" -> layout version (2), "indexed" -> position the
//	         streams bucket is complete through, "verified" -> position
//	         through which the last QuickVerify passed
//
// Integrity (file format 2): each commit writes the head of every stream
// it extends in the same transaction as the records, so the newest record
// of a stream, which no successor's PrevHash covers, is covered by its
// head; heads are never rebuilt from records (only the stream index is,
// after a crash). Open checks the file before trusting it (both meta
// pages, the file size against the pages in use, every page of the tree
// and the freelist page), and a <file>.pos sidecar, written after each
// commit, records the last acknowledged position, so a meta-page fallback
// that lost a transaction is reported. Damage is an error wrapping
// eventstore.ErrDamaged, never a panic; a write that finds no space fails
// with eventstore.ErrNoSpace and Health reports it. Options.ReadOnly opens
// the file without writing anything.
//
// Start-up cost: the last commit of Close writes bbolt's freelist (an open
// then reads it instead of rebuilding it from every page; commits do not
// write it, which on a large file would cost each of them tens of pages),
// and Close leaves a
// <file>.clean marker describing the file it closed (size, inode, a time
// stamp set into the past, a hash of both meta pages). A read-write Open
// consumes the marker and walks every page unless it matches: after a
// crash, a copy, or any change to the file since the clean Close. At 10 M
// events the walk takes seconds, the marker check a millisecond.
//
// Record encoding (format 1): a format byte, then uvarint-length-prefixed
// stream, uvarint version, length-prefixed id and type, the time (flag byte,
// then 8-byte Unix seconds and 4-byte nanoseconds when set), the
// length-prefixed actor, causation id, correlation id, suite and mode, the
// 32-byte previous hash and the length-prefixed data. The position is the
// key, so it is not repeated.
//
// Reads copy each page of values into one buffer and point the records'
// strings and data into it, so a replay costs about one allocation per
// page instead of eight per record.
package boltstore
