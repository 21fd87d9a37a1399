//go:build unix

package boltstore

import (
	"path/filepath"
	"syscall"
)

// freeBytes returns the space left for an unprivileged writer on the file
// system of path's directory.
func freeBytes(path string) (uint64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		return 0, false
	}
	return uint64(st.Bavail) * uint64(st.Bsize), true
}
