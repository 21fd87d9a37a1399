package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/boltstore"
	"github.com/e4c2/e4c2/eventstore/memstore"
	"github.com/e4c2/e4c2/eventstore/storetest"
)

func TestCopyMemToBolt(t *testing.T) {
	t.Run("import", func(t *testing.T) { testCopy(t, 3000, false) })
	// Through the Store interface only (small: one fsync per run of a stream).
	t.Run("append", func(t *testing.T) { testCopy(t, 150, true) })
}

// appendOnly hides the Importer of a backend.
type appendOnly struct{ eventstore.Store }

func testCopy(t *testing.T, records int, hideImporter bool) {
	ctx := context.Background()
	src := memstore.New()
	defer src.Close()
	// Interleaved streams, multi-event appends, a few thousand records to
	// cross the page size.
	n := 0
	for n < records {
		stream := fmt.Sprintf("s-%d", n%7)
		k := 1 + n%3
		evs := make([]eventstore.EventData, k)
		for j := range evs {
			evs[j] = storetest.Event(n)
			n++
		}
		if _, err := src.Append(ctx, stream, eventstore.Any, evs...); err != nil {
			t.Fatal(err)
		}
	}
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "copy.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	var dst eventstore.Store = bolt
	if hideImporter {
		dst = appendOnly{bolt}
	}
	var lastDone, lastTotal uint64
	calls := 0
	if err := eventstore.Copy(ctx, dst, src, func(done, total uint64) { lastDone, lastTotal = done, total; calls++ }); err != nil {
		t.Fatal(err)
	}
	if lastDone != uint64(n) || lastTotal != uint64(n) || calls < (n+4095)/4096 {
		t.Fatalf("progress ended at %d/%d after %d calls, want %d/%d", lastDone, lastTotal, calls, n, n)
	}
	a, _ := src.ReadAll(ctx, 1, n+1)
	b, _ := dst.ReadAll(ctx, 1, n+1)
	if len(a) != n || len(b) != n {
		t.Fatalf("src %d, dst %d records, want %d", len(a), len(b), n)
	}
	for i := range a {
		if a[i].Stream != b[i].Stream || a[i].Version != b[i].Version || a[i].ID != b[i].ID ||
			a[i].Position != b[i].Position || eventstore.HashRecord(&a[i]) != eventstore.HashRecord(&b[i]) {
			t.Fatalf("record %d differs after copy", i)
		}
	}
	if _, err := eventstore.Verify(ctx, dst, nil); err != nil {
		t.Fatal(err)
	}
	// Copying again into the same destination conflicts: nothing is
	// renumbered.
	if err := eventstore.Copy(ctx, dst, src, nil); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("second copy: %v, want ErrConflict", err)
	}
}
