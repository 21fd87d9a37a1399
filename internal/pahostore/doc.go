// Package pahostore is the in-memory message store every paho client of
// this module uses in place of paho's own MemoryStore.
//
// paho's MemoryStore keeps the very packet objects it is given. On a
// reconnection, paho's resume loads those objects back and sets their DUP
// flag while the previous connection's writer may still be encoding the
// same object: a data race inside paho (eclipse/paho.mqtt.golang#703) that
// the race detector reports in our broker-kill tests. This store keeps the
// encoded bytes instead and decodes a fresh packet on every Get, so the
// object paho resumes is never the one being written. paho calls Put from
// the goroutine that owns the packet before handing it to its writer, so
// encoding there reads nothing another goroutine writes.
package pahostore
