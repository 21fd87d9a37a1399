// Package eventstore defines the append-only event log of the C2: the Store
// interface, records with per-stream hash chains, typed errors, and the
// sealing of secret fields under data keys wrapped by the master key.
//
// Every backend sets each record's PrevHash at append, so each stream is a
// hash chain (HashRecord) that Verify walks to name the first altered
// record. Copy moves a whole log between backends (export and import)
// keeping streams, versions, ids, metadata and chains. The keyring of the
// sealing package lives in each backend's KeyringStorage, beside the log.
//
// Backends live in sub-packages (memstore, boltstore: the embedded default,
// esdb: EventStoreDB) and all pass the storetest conformance suite.
package eventstore
