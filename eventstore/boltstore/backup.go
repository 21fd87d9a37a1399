package boltstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
)

// Backup copies the whole store file as of one read transaction (a
// consistent snapshot: every append acknowledged before Backup was called
// is in it, and no half-written batch is) while appends go on. fn gets the
// size of the copy, the last position it holds and the copy to stream
// (size bytes; it may be written once). The copy is a complete bbolt file:
// it opens, verifies and serves as it is. It holds sealed keys and the
// keyring wrapped by the master key, never the master key itself.
func (s *Store) Backup(ctx context.Context, fn func(size int64, last uint64, w io.WriterTo) error) error {
	return s.view(ctx, func(tx *bolt.Tx) error {
		var last uint64
		if k, _ := tx.Bucket(bucketEvents).Cursor().Last(); len(k) == 8 {
			last = binary.BigEndian.Uint64(k)
		}
		if err := fn(tx.Size(), last, tx); err != nil {
			return fmt.Errorf("boltstore: backup: %w", err)
		}
		return nil
	})
}
