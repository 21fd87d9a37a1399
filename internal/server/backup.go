package server

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	nethttp "net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/eventstore/boltstore"
	"github.com/e4c2/e4c2/transport/mqtt/broker"
)

// Online backup (e4c2 backup DIR). The store is copied in one bbolt read
// transaction, so the copy is consistent and holds every append
// acknowledged before the request while appends go on. The response is a
// tar stream: the store file, the projection checkpoints and key-state
// snapshots of the data directory, the broker's session file when it can
// be read consistently, and last a MANIFEST.json with the SHA-256 of
// every file (the client checks each one).
//
// The master key is never in a backup: the store holds the keyring wrapped
// by it, so a backup is useless without the master key, which the
// operator keeps apart (a backup that held both would be the keys in
// clear to whoever gets it).

// BackupPath is the admin route of the online backup.
const BackupPath = "/api/v1/admin/backup"

// BackupManifest describes a backup; it is the last file of the stream.
type BackupManifest struct {
	Format    int                  `json:"format"`
	Created   time.Time            `json:"created"`
	Position  uint64               `json:"position"` // last position in the store copy
	Suite     string               `json:"suite"`
	Mode      string               `json:"mode"`
	Files     []BackupManifestFile `json:"files"`
	Skipped   []string             `json:"skipped,omitempty"` // what could not be copied, and why
	MasterKey string               `json:"master_key"`
}

// BackupManifestFile is one file of a backup.
type BackupManifestFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// BackupManifestName is the manifest's name in a backup.
const BackupManifestName = "MANIFEST.json"

const masterKeyNote = "not included: keep the master key apart from the backups; restore needs it"

// backupHandler serves BackupPath itself and passes everything else to
// next. It authenticates like the API (bearer token, looked up by hash)
// and requires the admin role: a backup is the whole log.
func (s *Server) backupHandler(next nethttp.Handler) nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if r.URL.Path != BackupPath {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method != nethttp.MethodGet {
			backupError(w, nethttp.StatusMethodNotAllowed, "method_not_allowed", "GET only")
			return
		}
		scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(secret) == "" {
			backupError(w, nethttp.StatusUnauthorized, "missing_token", "missing bearer token")
			return
		}
		tok, err := s.svc.VerifyToken(strings.TrimSpace(secret))
		if err != nil {
			backupError(w, nethttp.StatusUnauthorized, "invalid_token", "invalid or revoked token")
			return
		}
		if tok.Role != domain.TokenAdmin {
			backupError(w, nethttp.StatusForbidden, "forbidden", "a backup needs an admin token")
			return
		}
		st, ok := s.store.(*boltstore.Store)
		if !ok {
			backupError(w, nethttp.StatusNotImplemented, "not_supported", "online backup covers the embedded store; back up EventStoreDB with its own tools")
			return
		}
		// The database files are copied into spool files first, each in
		// one short read transaction, and streamed from there: a read
		// transaction held for as long as a slow client downloads would
		// stall every write that needs the file to grow (bbolt remaps
		// under the readers' lock), the broker's included.
		sp, err := s.spoolBackup(r.Context(), st)
		if err != nil {
			s.log.Error("backup failed", "err", err)
			if isNoSpace(err) {
				backupError(w, nethttp.StatusInsufficientStorage, "insufficient_storage",
					"no space left for the backup's spool files in the data directory; free space and retry")
				return
			}
			backupError(w, nethttp.StatusInternalServerError, "backup_failed", "the backup could not be taken; see the server log")
			return
		}
		defer sp.close()
		// A large store takes longer than the server's write timeout.
		_ = nethttp.NewResponseController(w).SetWriteDeadline(time.Time{})
		if err := s.writeBackup(w, sp, tok.Name); err != nil {
			// Headers are sent: the client sees a truncated stream
			// without a manifest and refuses it.
			s.log.Error("backup failed", "err", err)
		}
	})
}

func backupError(w nethttp.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

type hashingWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (h *hashingWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (s *Server) writeBackup(w nethttp.ResponseWriter, sp *backupSpool, by string) error {
	w.Header().Set("Content-Type", "application/x-tar")
	tw := tar.NewWriter(w)
	m := BackupManifest{Format: 1, Created: s.clock().UTC(), Suite: s.cfg.Suite, Mode: s.cfg.Mode, MasterKey: masterKeyNote,
		Position: sp.position, Skipped: sp.skipped}
	add := func(name string, size int64, write func(io.Writer) error) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: m.Created, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		hw := &hashingWriter{w: tw, h: sha256.New()}
		if err := write(hw); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if hw.n != size {
			return fmt.Errorf("%s: wrote %d bytes of %d", name, hw.n, size)
		}
		m.Files = append(m.Files, BackupManifestFile{Name: name, Size: size, SHA256: hex.EncodeToString(hw.h.Sum(nil))})
		return nil
	}
	if err := sp.store.addTo("e4c2.db", add); err != nil {
		return err
	}
	s.log.Info("backup: store copied", "position", m.Position, "by", "token:"+by)
	// Checkpoints and snapshots are written atomically (rename): each file
	// read is whole. They are caches; a restore works without them.
	var extra []string
	cps, _ := filepath.Glob(filepath.Join(s.cfg.DataDir, "*.checkpoint"))
	snaps, _ := filepath.Glob(filepath.Join(s.cfg.DataDir, "snapshots", "keystate-*.snap"))
	extra = append(append(extra, cps...), snaps...)
	sort.Strings(extra)
	for _, path := range extra {
		b, err := os.ReadFile(path)
		if err != nil {
			m.Skipped = append(m.Skipped, filepath.Base(path)+": "+err.Error())
			continue
		}
		rel, _ := filepath.Rel(s.cfg.DataDir, path)
		if err := add(filepath.ToSlash(rel), int64(len(b)), func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
			return err
		}
	}
	if sp.broker != nil {
		if err := sp.broker.addTo("broker.db", add); err != nil {
			return err
		}
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: BackupManifestName, Mode: 0o600, Size: int64(len(mb)), ModTime: m.Created, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(mb); err != nil {
		return err
	}
	return tw.Close()
}

// backupBrokerFile copies the embedded broker's session file (sessions,
// subscriptions and the QoS 1/2 messages a device has not taken yet) in
// one bbolt read transaction: through the running broker, which holds the
// file's lock, or by opening the file when no broker runs (a read-only
// server). When neither works the file is left out and the manifest says
// so; it only spares devices a resend of what the C2's log still holds.
func (s *Server) backupBrokerFile(dir string) (*spoolFile, string, error) {
	var sf *spoolFile
	copyTx := func(size int64, wt io.WriterTo) error {
		var err error
		sf, err = spoolCopy(dir, size, wt)
		return err
	}
	if s.broker != nil {
		err := s.broker.BackupSessions(copyTx)
		if !errors.Is(err, broker.ErrNoSessionFile) {
			return sf, "", err
		}
	}
	path := filepath.Join(s.cfg.DataDir, "broker.db")
	if _, err := os.Stat(path); err != nil {
		return nil, "", nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
	if err != nil {
		return nil, "broker.db: held by the running broker (sessions only: devices get their pending commands from the C2's log)", nil
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error { return copyTx(tx.Size(), tx) })
	return sf, "", err
}

// backupSpool holds the copies of the database files a backup streams.
type backupSpool struct {
	position uint64
	store    *spoolFile
	broker   *spoolFile // nil: no session file
	skipped  []string
}

// spoolBackup copies the store and the broker's session file into spool
// files, each as of one read transaction, before anything is sent.
func (s *Server) spoolBackup(ctx context.Context, st *boltstore.Store) (*backupSpool, error) {
	sp := &backupSpool{}
	err := st.Backup(ctx, func(size int64, last uint64, wt io.WriterTo) error {
		sp.position = last
		var err error
		sp.store, err = spoolCopy(s.cfg.DataDir, size, wt)
		return err
	})
	if err != nil {
		sp.close()
		return nil, err
	}
	bf, skipped, err := s.backupBrokerFile(s.cfg.DataDir)
	if err != nil {
		sp.close()
		return nil, fmt.Errorf("broker sessions: %w", err)
	}
	sp.broker = bf
	if skipped != "" {
		sp.skipped = append(sp.skipped, skipped)
	}
	return sp, nil
}

func (sp *backupSpool) close() {
	for _, f := range []*spoolFile{sp.store, sp.broker} {
		if f != nil {
			f.f.Close()
		}
	}
}

// spoolFile is a copy of one database file in an unlinked temporary file
// of the data directory (the same disk and the same permissions as the
// original: it holds only what the file holds, sealed keys included).
type spoolFile struct {
	f    *os.File
	size int64
}

func spoolCopy(dir string, size int64, wt io.WriterTo) (*spoolFile, error) {
	f, err := os.CreateTemp(dir, ".backup-spool-*")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	// Unlinked at once: the spool disappears with the process, whatever
	// ends it; the open descriptor keeps it readable until close.
	_ = os.Remove(f.Name())
	n, err := wt.WriteTo(f)
	if err == nil && n != size {
		err = fmt.Errorf("copied %d bytes of %d", n, size)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	return &spoolFile{f: f, size: size}, nil
}

// addTo streams the spooled copy into the backup under name.
func (sf *spoolFile) addTo(name string, add func(string, int64, func(io.Writer) error) error) error {
	return add(name, sf.size, func(w io.Writer) error {
		_, err := io.Copy(w, io.NewSectionReader(sf.f, 0, sf.size))
		return err
	})
}

// isNoSpace tells a spool that failed for want of disk space (or quota).
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, eventstore.ErrNoSpace)
}
