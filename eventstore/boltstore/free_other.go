//go:build !unix

package boltstore

import "os"

// freeBytes is not measured on this system: Health then relies on the
// outcome of the last write alone.
func freeBytes(string) (uint64, bool) { return 0, false }

// fileIdentity is not known on this system: only the size, time stamp and
// meta pages tell files apart.
func fileIdentity(os.FileInfo) (dev, ino uint64) { return 0, 0 }
