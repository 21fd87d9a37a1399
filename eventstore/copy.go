package eventstore

import (
	"context"
	"fmt"
)

// copyPage is the ReadAll page size of Copy.
const copyPageSize = 4096

// copyMaxRun caps the records of one Append during a Copy: a backend may
// bound the events of one atomic append (JetStream batches hold at most
// 1000 messages).
const copyMaxRun = 500

// Copy appends every record of src to dst in global order, preserving each
// record's stream, version, event id, type, metadata and data (so every
// stream's hash chain is the same in dst; positions are dst's own). It is
// the engine of export and import between backends.
//
// Consecutive records of one stream (at most copyMaxRun) are appended in
// one call with the exact expected version, so a dst that already holds one of the streams at
// another version fails with ErrConflict instead of renumbering it. After
// each append Copy checks that dst chained the records as src did.
// progress, if not nil, is called after each page with the records copied
// and the total to copy.
func Copy(ctx context.Context, dst, src Store, progress func(done, total uint64)) error {
	var total uint64
	for from := uint64(1); ; {
		page, err := src.ReadAll(ctx, from, copyPageSize)
		if err != nil {
			return fmt.Errorf("eventstore: copy: count: %w", err)
		}
		if len(page) == 0 {
			break
		}
		total += uint64(len(page))
		from = page[len(page)-1].Position + 1
	}
	var done uint64
	for from := uint64(1); done < total; {
		page, err := src.ReadAll(ctx, from, copyPageSize)
		if err != nil {
			return fmt.Errorf("eventstore: copy: read: %w", err)
		}
		if len(page) == 0 {
			break
		}
		if imp, ok := dst.(Importer); ok {
			if err := imp.Import(ctx, page); err != nil {
				return fmt.Errorf("eventstore: copy: import from position %d: %w", page[0].Position, err)
			}
		} else {
			if err := copyPage(ctx, dst, page); err != nil {
				return err
			}
		}
		done += uint64(len(page))
		from = page[len(page)-1].Position + 1
		if progress != nil {
			progress(min(done, total), total)
		}
	}
	return nil
}

// Importer is implemented by backends that append records of many streams
// in one durable batch (one transaction, one fsync), keeping each record's
// stream, version and event data. A record must be the next version of its
// stream and its PrevHash must be the destination stream's head hash;
// otherwise Import fails (ErrConflict or ErrChainBroken) and writes
// nothing.
type Importer interface {
	Import(ctx context.Context, recs []Record) error
}

// copyPage appends a page of records through the Store interface.
func copyPage(ctx context.Context, dst Store, page []Record) error {
	for i := 0; i < len(page); {
		j := i + 1
		for j < len(page) && j-i < copyMaxRun && page[j].Stream == page[i].Stream && page[j].Version == page[j-1].Version+1 {
			j++
		}
		if err := copyRun(ctx, dst, page[i:j]); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// copyRun appends records of one stream with consecutive versions.
func copyRun(ctx context.Context, dst Store, run []Record) error {
	first := run[0]
	evs := make([]EventData, len(run))
	for i := range run {
		evs[i] = run[i].EventData
	}
	v, err := dst.Append(ctx, first.Stream, int64(first.Version-1), evs...)
	if err != nil {
		return fmt.Errorf("eventstore: copy: stream %q version %d: %w", first.Stream, first.Version, err)
	}
	last := run[len(run)-1]
	if v != last.Version {
		return fmt.Errorf("eventstore: copy: stream %q: destination at version %d, want %d", first.Stream, v, last.Version)
	}
	got, err := dst.ReadStream(ctx, first.Stream, first.Version)
	if err != nil {
		return fmt.Errorf("eventstore: copy: check stream %q: %w", first.Stream, err)
	}
	if len(got) == 0 || got[0].PrevHash != first.PrevHash || HashRecord(&got[len(got)-1]) != HashRecord(&last) {
		return fmt.Errorf("%w: copy of stream %q version %d does not chain as the source", ErrChainBroken, first.Stream, first.Version)
	}
	return nil
}
