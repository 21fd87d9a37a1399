package server

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	nethttp "net/http"
	"testing"
	"time"

	"github.com/e4c2/e4c2/eventstore/boltstore"
	"github.com/e4c2/e4c2/internal/testwait"
)

// stallWriter is a response writer whose client stops reading: its first
// Write blocks until released.
type stallWriter struct {
	header  nethttp.Header
	started chan struct{}
	release chan struct{}
	buf     bytes.Buffer
	first   bool
}

func (w *stallWriter) Header() nethttp.Header { return w.header }
func (w *stallWriter) WriteHeader(int)        {}
func (w *stallWriter) Write(p []byte) (int, error) {
	if !w.first {
		w.first = true
		close(w.started)
		<-w.release
	}
	return w.buf.Write(p)
}

// TestBackupStalledClientHoldsNoTransaction: while a backup download is
// stalled by its client, the store holds no read transaction for it (a
// held one blocks bbolt's remap on growth, and Close): the store closes
// while the download waits, and the download still completes, whole, from
// the spooled copies.
func TestBackupStalledClientHoldsNoTransaction(t *testing.T) {
	cfg := resConfig(t.TempDir(), "standard", "sk", "")
	srv, err := Start(context.Background(), cfg, Options{Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx) // the store was closed under it on purpose
	})
	st := srv.store.(*boltstore.Store)
	sp, err := srv.spoolBackup(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	w := &stallWriter{header: nethttp.Header{}, started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- srv.writeBackup(w, sp, "test") }()
	testwait.Ready(t, "the backup's first write", w.started)

	closed := make(chan struct{})
	go func() { _ = st.Close(); close(closed) }()
	testwait.Ready(t, "the store to close while the download is stalled", closed)

	close(w.release)
	if err := testwait.Ready(t, "the backup to finish", done); err != nil {
		t.Fatalf("backup: %v", err)
	}
	tr := tar.NewReader(&w.buf)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("backup stream: %v", err)
		}
		names = append(names, h.Name)
	}
	if len(names) < 2 || names[0] != "e4c2.db" || names[len(names)-1] != BackupManifestName {
		t.Fatalf("backup holds %v, want e4c2.db first and the manifest last", names)
	}
}
