package c2

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/e4c2/e4c2/domain"
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

	// The audit window behind the snapshot, filled by fillAudit:
	// records (auditFrom, auditTo].
	auditFrom, auditTo uint64
	auditDone          chan struct{}
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
	t0 := time.Now()
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
	// The in-memory audit keeps its newest AuditMax entries, which are in
	// the last AuditMax records. The runner feeds it the tail with the key
	// state; the rest of its window (up to the snapshot) is filled behind,
	// by fillAudit, so that a start does not wait for a display model. An
	// unbounded audit needs the whole log, and the runner replays it.
	if cfg.AuditMax > 0 {
		s.snap.auditFrom = uint64(0)
		if info.Position > uint64(cfg.AuditMax) {
			s.snap.auditFrom = info.Position - uint64(cfg.AuditMax)
		}
		s.snap.auditTo = info.Position
		s.audit.Resume(info.Position, ks.TopicNames())
	}
	s.snap.log.Info("loaded a key-state snapshot", "path", info.Path, "position", info.Position,
		"took", time.Since(t0).Round(time.Millisecond).String())
}

// fillAudit replays the audit window behind the snapshot, (auditFrom,
// auditTo], into a separate trail and prepends it to the live one. Until
// it is done, the audit API shows the entries since the snapshot only;
// AuditFilled tells when it is done.
func (s *Service) fillAudit(ctx context.Context, names map[domain.ID]string) {
	s.snap.auditDone = make(chan struct{})
	if s.snap.auditTo == 0 {
		close(s.snap.auditDone)
		return
	}
	s.snap.wg.Add(1)
	go func() {
		defer s.snap.wg.Done()
		defer close(s.snap.auditDone)
		fill := projections.NewAudit(0)
		fill.Resume(s.snap.auditFrom, names)
		for from := s.snap.auditFrom + 1; from <= s.snap.auditTo; {
			recs, err := s.store.ReadAll(ctx, from, 4096)
			if err != nil {
				if ctx.Err() == nil {
					s.snap.log.Warn("audit window not filled", "err", err)
				}
				return
			}
			if len(recs) == 0 {
				break
			}
			for _, r := range recs {
				if r.Position > s.snap.auditTo {
					break
				}
				if err := fill.Apply(r); err != nil {
					s.snap.log.Warn("audit window not filled", "position", r.Position, "err", err)
					return
				}
			}
			from = recs[len(recs)-1].Position + 1
		}
		s.audit.Prepend(fill.Entries())
	}()
}

// AuditFilled is closed once the in-memory audit trail holds its whole
// window (at once without a snapshot start).
func (s *Service) AuditFilled() <-chan struct{} { return s.snap.auditDone }

// LoadedSnapshot returns the snapshot New started from (zero Position:
// none, the whole log was replayed).
func (s *Service) LoadedSnapshot() projections.SnapshotInfo { return s.snap.loaded }

// startSnapshots writes a snapshot each time the key state moved
// SnapshotEvery events past the last one, until ctx is done. It polls the
// position once a second rather than waiting on the runner: a standing
// waiter would make the runner signal after every record.
func (s *Service) startSnapshots(ctx context.Context) {
	if s.snap.dir == nil {
		return
	}
	poll := snapshotPoll
	s.snap.wg.Add(1)
	go func() {
		defer s.snap.wg.Done()
		tick := time.NewTicker(poll)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			s.snap.mu.Lock()
			next := s.snap.lastPos + s.snap.every
			s.snap.mu.Unlock()
			if s.runner.Position() < next {
				continue
			}
			if _, err := s.WriteSnapshot(); err != nil {
				s.snap.log.Warn("key-state snapshot not written", "err", err)
			}
		}
	}()
}

// snapshotPoll is how often the snapshot cadence is checked.
var snapshotPoll = time.Second

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
// start replays nothing. A failure (a full disk) is logged, not returned:
// a snapshot is a cache, the next start replays more.
func (s *Service) finalSnapshot() error {
	if s.snap.dir == nil {
		return nil
	}
	s.snap.wg.Wait()
	if _, err := s.WriteSnapshot(); err != nil {
		s.snap.log.Warn("key-state snapshot at stop not written; the next start replays more of the log", "err", err)
	}
	return nil
}
