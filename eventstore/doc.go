// Package eventstore defines the append-only event log of the C2: the Store
// interface, records with per-stream hash chains, typed errors, and the
// sealing of secret fields under data keys wrapped by the master key.
//
// Backends live in sub-packages (memstore, boltstore: the embedded default,
// esdb: EventStoreDB) and all pass the storetest conformance suite.
package eventstore
