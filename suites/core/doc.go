// Package core holds the definitions every E4 suite shares: the Suite and
// PKSuite interfaces, the protocol errors, the timestamp window, name and
// topic validation and the command codec.
//
// It exists below package suites so that the suite implementations
// (suites/standard, suites/fips, suites/pq) can import it while package
// suites imports them for its registry. Users import package suites, which
// re-exports everything here. core imports nothing but the standard library
// (crypto/sha3 included): the fips suite depends on it, and its import graph
// must stay within approved implementations.
package core
