// Package benchlog writes, once per directory, a realistic C2 log of
// millions of events for the start-up benchmarks (c2 and internal/server),
// with a key-state snapshot some way before its end. It is test support:
// only benchmarks import it.
package benchlog
