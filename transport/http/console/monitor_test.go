package console_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/internal/config"
	"github.com/e4c2/e4c2/internal/testwait"
)

// TestConsoleMonitorFindings: with the traffic monitor on, the overview
// lists its findings (here one recorded through the service as the
// monitor records them); with it off it says so (TestConsoleSecurity's
// server runs without it).
func TestConsoleMonitorFindings(t *testing.T) {
	srv, adminToken := startServerWith(t, func(c *config.Config) { c.Monitor.Enabled = true }, io.Discard)
	svc := srv.Service()
	if _, err := svc.NewTopic(context.Background(), c2.Origin{Actor: "test"}, "plant/line-3"); err != nil {
		t.Fatal(err)
	}
	now := uint64(time.Now().Unix())
	if err := svc.RecordFindings(context.Background(), c2.Origin{}, []domain.MonitorFinding{{Kind: "forged",
		Topic: domain.TopicHash("plant/line-3"), WindowStart: now - 60, WindowEnd: now, Count: 4}}); err != nil {
		t.Fatal(err)
	}
	s := newSession(t, "http://"+srv.HTTPAddr())
	s.login(adminToken)
	testwait.For(t, "the finding on the overview", func() bool {
		_, page := s.get("/ui/")
		return strings.Contains(page, "monitor: forged x4") && strings.Contains(page, "plant/line-3") && !strings.Contains(page, "monitor off")
	})

	off, tok := startServer(t)
	s = newSession(t, "http://"+off.HTTPAddr())
	s.login(tok)
	if _, page := s.get("/ui/"); !strings.Contains(page, "monitor off") {
		t.Error("without the monitor the overview does not say monitor off")
	}
}
