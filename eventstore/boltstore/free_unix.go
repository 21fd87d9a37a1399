//go:build unix

package boltstore

import (
	"os"
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

// fileIdentity returns the device and inode of a file, so that a file
// replaced by another (a restored copy) is told apart.
func fileIdentity(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino) // Dev is an int32 on some systems
	}
	return 0, 0
}
