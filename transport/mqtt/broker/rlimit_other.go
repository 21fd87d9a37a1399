//go:build !unix

package broker

// openFileLimit: no descriptor limit to read on this system (Windows has
// no RLIMIT_NOFILE); DefaultMaxConns then uses its fallback.
func openFileLimit() (uint64, bool) { return 0, false }
