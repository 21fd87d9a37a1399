package http

import (
	"context"
	nethttp "net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/e4c2/e4c2/automation"
	"github.com/e4c2/e4c2/internal/testwait"
)

// vmRunning reports whether any goroutine is inside expr's VM.
func vmRunning() bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Contains(string(buf[:n]), "expr-lang/expr/vm.(*VM).Run")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// The probe's request: a reader's dry run of 6 nested any(topics, ...)
// is refused at compile time, with the position, before any evaluation.
func TestRulesDryRunNestingRefused(t *testing.T) {
	e := newRuleEnv(t)
	deep := strings.Repeat("any(topics, ", 6) + "true" + strings.Repeat(")", 6)
	spec := `{"trigger":{"event":"` + deep + `"},"action":{"type":"rotate_topic"}}`
	req := `{"spec":` + spec + `}`
	rec := e.do(post, "/api/v1/rules/dry-run", e.reader, req)
	e.expect(rec, 400, "invalid_expression")
	type body struct {
		Error struct {
			Message string
			Details compileErrorDetails
		}
	}
	eb := decode[body](t, rec)
	if eb.Error.Details != (compileErrorDetails{Field: "trigger.event", Line: 1, Column: 24}) || !strings.Contains(eb.Error.Message, "nests predicates") {
		t.Fatalf("error %+v", eb.Error)
	}
	e.expect(e.do(post, "/api/v1/rules", e.oper, spec), 400, "invalid_expression")
}

// A dry run stops evaluating when its HTTP client goes away, even with a
// time budget that would let it run for an hour.
func TestRulesDryRunStopsWhenClientGoes(t *testing.T) {
	e := newRuleEnv(t, func(c *automation.Config) {
		c.EvalBudget = time.Hour
		c.MemoryBudget = 1 << 40 // only the request context can stop it
	})
	srv := httptest.NewServer(e.s.Handler())
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	body := `{"spec":{"trigger":{"event":"any(1..100000, any(1..100000, # < 0))"},"action":{"type":"rotate_topic"}},"event":{}}`
	req, _ := nethttp.NewRequestWithContext(ctx, post, srv.URL+"/api/v1/rules/dry-run", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.reader)
	req.Header.Set("Content-Type", "application/json")
	errc := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		errc <- err
	}()
	testwait.For(t, "the dry run to be evaluating", vmRunning)
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("the request completed")
	}
	// The handler returned (its log line is written) and nothing is left
	// evaluating.
	testwait.For(t, "the dry-run handler to return", func() bool {
		return strings.Contains(e.logs.String(), `"path":"/api/v1/rules/dry-run"`)
	})
	testwait.For(t, "the evaluation to stop", func() bool { return !vmRunning() })
}
