// Package eventcodec maps domain events to stored records and back: the
// compact binary form of every event of domain's catalogue, with key
// material sealed (sealing.Sealer) under the associated data
// sealing.SealAD(stream, version, wire type), which binds a sealed key to
// the one record that holds it.
//
// It sits between the decide layer and the store on purpose. domain decides
// and must not know how a decision is stored or sealed; eventstore stores
// opaque records and must not know domain's events. This package imports
// both, and every caller that writes or reads domain events (the c2
// service, projections, automation, the offline tools) goes through it, so
// the import arrows keep pointing one way (see domain's layering test).
//
// # Wire format
//
// Every payload starts with a format version byte (1); a decoder refuses any
// other value instead of guessing. Fields follow in a fixed order per event
// type: 16-byte ids as they are, integers as unsigned varints, byte strings
// (names, public keys, sealed keys) length-prefixed with a varint and
// bounded so that a corrupt length cannot make the decoder allocate much.
// Stored logs are decoded with this code, so the format only ever grows by
// a new format byte or a new wire name, never by changing what one means.
//
// Decoding never unseals: state keeps keys sealed and they are opened
// (OpenSecret) only where they are used, by the delivery worker and the
// export paths.
package eventcodec
