// Package c2test builds the C2 service that tests of the packages around
// it (the HTTP transport, the server's wiring) run against: an in-memory
// store, a fixed test master key and the standard suite, in one place, so
// that a change to what a service needs is one change for all of them.
//
// It is for tests only. The master key is a constant: it protects nothing
// and must never serve outside a test.
package c2test
