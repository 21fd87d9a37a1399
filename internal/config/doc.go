// Package config holds the e4c2 server configuration: defaults, loading from
// a JSON file, environment variables and flags (in that order of precedence,
// the last wins), and validation that refuses invalid combinations at start
// with one clear line.
//
// Secrets never come from flags (they show in process listings): the master
// key comes from a file, an environment variable or a passphrase file, broker
// passwords from a file or an environment variable.
package config
