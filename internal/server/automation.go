package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/e4c2/e4c2/automation"
	"github.com/e4c2/e4c2/projections"
)

// automationCheckpoint names the engine's checkpoint file in the data
// directory ("automation.checkpoint"). It is per instance: two C2s on one
// store each keep their own, and the rule streams' optimistic concurrency
// makes each fire happen once.
const automationCheckpoint = "automation"

// startAutomation builds the rule engine over the service's store and runs
// it until closeAll stops it. It runs before the API starts so the rule
// routes always have an engine behind them.
func (s *Server) startAutomation(ctx context.Context) error {
	eng, err := automation.New(automation.Config{
		Store:          s.store,
		Service:        s.svc,
		Checkpoints:    projections.FileCheckpoints{Dir: s.cfg.DataDir},
		CheckpointName: automationCheckpoint,
		Logger:         s.log.With("component", "automation"),
	})
	if err != nil {
		return fmt.Errorf("automation engine: %w", err)
	}
	// The engine outlives Start's ctx (a start deadline must not stop it);
	// closeAll cancels it.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.rules, s.stopRules, s.rulesDone = eng, cancel, make(chan error, 1)
	go func() {
		err := eng.Run(runCtx)
		if err != nil && !errors.Is(err, context.Canceled) {
			// A store error stops the engine; the API keeps serving and
			// rule management keeps working (it reads the streams).
			s.log.Error("automation engine stopped", "err", err)
		}
		s.rulesDone <- err
	}()
	return nil
}

// stopAutomation cancels the engine and waits for Run to return (it saves
// its checkpoint on the way out), at most until ctx is done.
func (s *Server) stopAutomation(ctx context.Context) error {
	if s.stopRules == nil {
		return nil
	}
	s.stopRules()
	select {
	case <-s.rulesDone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("automation shutdown: %w", ctx.Err())
	}
}

// Rules returns the automation engine (tests, embedding).
func (s *Server) Rules() *automation.Engine { return s.rules }
