package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"path/filepath"
	"strings"

	"github.com/e4c2/e4c2/automation"
	"github.com/e4c2/e4c2/eventstore"
	"github.com/e4c2/e4c2/projections"
	"github.com/e4c2/e4c2/transport/http/console"
)

// Read-only mode (serve --read-only) is for forensics on a store that must
// not change, typically one whose hash chain is broken: the normal start
// refuses it, and an investigator still needs to read the state it holds
// through the usual API. So the store is opened read-only (bbolt's shared
// lock: nothing can be written, not even the verified mark or a rebuilt
// index), and nothing that writes runs: no delivery worker, no automation
// engine, no broker (its presence hook appends device.seen), no first
// admin token, no snapshot. The API refuses every request that is not a
// read with the stable error code "read_only".

// ReadOnlyCode is the error code of a request refused by a read-only
// server.
const ReadOnlyCode = "read_only"

// snapshotDir is where the key-state snapshots live (none read-only: a
// forensic start replays the log, the evidence, not a cache of it).
func (s *Server) snapshotDir() *projections.SnapshotDir {
	if s.cfg.ReadOnly || s.keyring == nil {
		return nil
	}
	return &projections.SnapshotDir{Dir: filepath.Join(s.cfg.DataDir, "snapshots"), Sealer: s.keyring}
}

// reportIntegrity runs the start check without acting on it: a read-only
// start serves a broken log, and says so in the log.
func reportIntegrity(ctx context.Context, st eventstore.Store, log *slog.Logger) {
	qv, ok := st.(eventstore.QuickVerifier)
	if !ok {
		return
	}
	if rep, err := qv.QuickVerify(ctx); err != nil {
		log.Warn("read-only start on a store that does not verify; serving it for inspection only", "err", err)
	} else {
		log.Info("read-only start; the store verifies", "last_position", rep.LastPosition)
	}
}

// startReadOnly finishes a read-only Start: the rule engine is built (the
// rule routes read the rule streams) but not run, and only the API starts.
func (s *Server) startReadOnly() error {
	eng, err := automation.New(automation.Config{Store: s.store, Service: s.svc,
		Checkpoints: projections.FileCheckpoints{Dir: s.cfg.DataDir}, CheckpointName: automationCheckpoint,
		Logger: s.log.With("component", "automation")})
	if err != nil {
		return fmt.Errorf("automation engine: %w", err)
	}
	s.rules = eng
	if err := s.startHTTP(); err != nil {
		return err
	}
	s.log.Info("e4c2 started read-only (forensics): no delivery, no automation, no broker, no write",
		"http", s.HTTPAddr(), "store", storeDescription(s.cfg), "position", s.svc.Position(),
		"clients", s.svc.CountClients(), "topics", s.svc.CountTopics(), "pending", s.svc.PendingCount())
	return nil
}

// readOnlyHandler refuses every request but reads (GET, HEAD, OPTIONS)
// before it reaches the API: the store would refuse the write anyway, but
// later and with a less clear error, and some non-GET routes (protect)
// would work while others fail. The web console's forms pass: it runs
// with Config.ReadOnly and refuses every change itself, with a page, but
// lets one log in and out and dry-run a rule.
func readOnlyHandler(next nethttp.Handler) nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		switch r.Method {
		case nethttp.MethodGet, nethttp.MethodHead, nethttp.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, console.Prefix) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(nethttp.StatusForbidden)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{
			"code":    ReadOnlyCode,
			"message": "the server runs --read-only (forensics): no change is accepted",
		}})
	})
}
