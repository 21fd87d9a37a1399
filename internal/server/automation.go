package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/e4c2/e4c2/automation"
	"github.com/e4c2/e4c2/eventstore"
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
	s.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "e4c2_automation_running", Help: "1 while the automation engine runs, 0 while it restarts after an error."},
		func() float64 {
			if s.automationErr() != nil {
				return 0
			}
			return 1
		}))
	go func() { s.rulesDone <- s.runAutomation(runCtx, eng) }()
	return nil
}

// automationRetryMax bounds the pause before the engine restarts after it
// stopped on an error.
var automationRetryMax = 5 * time.Second

// automationSettled is how long a restarted engine must run before it
// counts as running again.
var automationSettled = 2 * time.Second

// runAutomation runs the engine until ctx is done. When the engine stops
// on an error (its log subscription dropped for good, a checkpoint it
// could not read), it is restarted after a growing pause; meanwhile
// automationErr reports the error (/readyz, e4c2_automation_running).
func (s *Server) runAutomation(ctx context.Context, eng *automation.Engine) error {
	for attempt := 1; ; attempt++ {
		prev := s.rulesErr.Load()
		settled := time.AfterFunc(automationSettled, func() { s.rulesErr.CompareAndSwap(prev, nil) })
		err := eng.Run(ctx)
		if !settled.Stop() {
			attempt = 1
		}
		if ctx.Err() != nil || err == nil || errors.Is(err, context.Canceled) || errors.Is(err, eventstore.ErrClosed) {
			return err
		}
		// A store error stops the engine; the API keeps serving and rule
		// management keeps working (it reads the streams) while it restarts.
		s.log.Error("automation engine stopped; restarting it", "err", err)
		s.rulesErr.Store(&err)
		s.metrics.automationRestarts.Inc()
		t := time.NewTimer(min(time.Duration(attempt)*200*time.Millisecond, automationRetryMax))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// automationErr returns why the automation engine is not running (it is
// restarting after an error), or nil.
func (s *Server) automationErr() error {
	if p := s.rulesErr.Load(); p != nil {
		return fmt.Errorf("engine stopped, restarting: %w", *p)
	}
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
