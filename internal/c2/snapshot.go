package c2

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/e4c2/e4c2/projections"
)

// DefaultSnapshotEvery is the default snapshot cadence in events: at 10 M
// events a start then replays at most 100,000 (well under a second) and a
// snapshot costs the encoding of the key state once per 100,000 appends.
const DefaultSnapshotEvery = 100_000

// snapState is the snapshot bookkeeping of a Service.
type snapState struct {
	dir   *projections.SnapshotDir
	every uint64
	log   *slog.Logger

	mu      sync.Mutex // serializes writes
	lastPos uint64     // position of the newest snapshot written or loaded
	loaded  projections.SnapshotInfo
	wg      sync.WaitGroup
}

// loadSnapshot replaces the empty key state by the newest valid snapshot
// (unless cfg.FromScratch) and moves the audit trail to the window of the
// log it keeps, so that the runner replays only the tail. A snapshot that
// does not check out is logged and ignored: the replay then starts at zero.
func (s *Service) loadSnapshot(cfg Config) {
	s.snap.dir, s.snap.every, s.snap.log = cfg.Snapshots, cfg.SnapshotEvery, cfg.Logger
	if s.snap.every == 0 {
		s.snap.every = DefaultSnapshotEvery
	}
	if s.snap.log == nil {
		s.snap.log = slog.Default()
	}
	if s.snap.dir == nil || cfg.FromScratch {
		if cfg.ReadOnly {
			s.snap.dir = nil
		}
		return
	}
	if cfg.ReadOnly {
		// Loaded, never written.
		defer func() { s.snap.dir = nil }()
	}
	ks, info, err := s.snap.dir.LoadNewest(context.Background(), s.store, func(path string, err error) {
		s.snap.log.Warn("ignoring a key-state snapshot that does not check out; replaying the log instead",
			"path", path, "err", err)
	})
	if err != nil {
		if !errors.Is(err, projections.ErrNoSnapshot) {
			s.snap.log.Warn("key-state snapshots not loaded", "err", err)
		}
		return
	}
	s.ks = ks
	s.snap.lastPos, s.snap.loaded = info.Position, info
	// The in-memory audit keeps its newest AuditMax entries: those are in
	// the last AuditMax records, so only they are replayed into it. An
	// unbounded audit needs the whole log.
	if cfg.AuditMax > 0 && info.Position > uint64(cfg.AuditMax) {
		s.audit.Resume(info.Position-uint64(cfg.AuditMax), ks.TopicNames())
	}
	s.snap.log.Info("loaded a key-state snapshot", "path", info.Path, "position", info.Position)
}

// LoadedSnapshot returns the snapshot New started from (zero Position:
// none, the whole log was replayed).
func (s *Service) LoadedSnapshot() projections.SnapshotInfo { return s.snap.loaded }

// startSnapshots writes a snapshot each time the key state moved
// SnapshotEvery events past the last one, until ctx is done.
func (s *Service) startSnapshots(ctx context.Context) {
	if s.snap.dir == nil {
		return
	}
	s.snap.wg.Add(1)
	go func() {
		defer s.snap.wg.Done()
		for {
			s.snap.mu.Lock()
			next := s.snap.lastPos + s.snap.every
			s.snap.mu.Unlock()
			if err := s.runner.Wait(ctx, func() bool { return s.runner.Position() >= next }); err != nil {
				return
			}
			if _, err := s.WriteSnapshot(); err != nil {
				s.snap.log.Warn("key-state snapshot not written", "err", err)
				// Retry after a pause rather than on the next event.
				select {
				case <-ctx.Done():
					return
				case <-time.After(10 * time.Second):
				}
			}
		}
	}()
}

// WriteSnapshot writes a key-state snapshot now (if the state moved since
// the last one) and returns what it wrote (zero Position: nothing).
func (s *Service) WriteSnapshot() (projections.SnapshotInfo, error) {
	if s.snap.dir == nil {
		return projections.SnapshotInfo{}, errors.New("c2: no snapshot directory configured")
	}
	s.snap.mu.Lock()
	defer s.snap.mu.Unlock()
	if s.ks.Position() == s.snap.lastPos {
		return projections.SnapshotInfo{}, nil
	}
	info, err := s.snap.dir.Save(s.ks)
	if err != nil {
		return info, fmt.Errorf("c2: snapshot: %w", err)
	}
	if info.Position > 0 {
		s.snap.lastPos = info.Position
		s.snap.log.Info("key-state snapshot written", "path", info.Path, "position", info.Position, "bytes", info.Size)
	}
	return info, nil
}

// finalSnapshot is the snapshot of a graceful stop (Close), so the next
// start replays nothing.
func (s *Service) finalSnapshot() error {
	if s.snap.dir == nil {
		return nil
	}
	s.snap.wg.Wait()
	_, err := s.WriteSnapshot()
	return err
}
