package monitor

import (
	"context"
	"sync"
	"time"

	"github.com/e4c2/e4c2/c2"
	"github.com/e4c2/e4c2/domain"
	"github.com/e4c2/e4c2/suites/core"
)

// fakeService serves the keys of a fixture for one topic and collects the
// recorded findings.
type fakeService struct {
	f     *fixture
	topic domain.ID

	mu       sync.Mutex
	findings []domain.MonitorFinding
}

func newFakeService(f *fixture, topic string) *fakeService {
	return &fakeService{f: f, topic: domain.TopicHash(topic)}
}

func (s *fakeService) Suite() core.Suite         { return s.f.suite }
func (s *fakeService) Mode() core.Mode           { return s.f.mode }
func (s *fakeService) Window() core.Window       { return core.DefaultWindow() }
func (s *fakeService) Transition() time.Duration { return time.Hour }

func (s *fakeService) TopicKeyVersion(h domain.ID) (uint64, bool) {
	if h != s.topic {
		return 0, false
	}
	return s.f.keys.Current.Version, true
}

func (s *fakeService) TopicKeyHistory(_ context.Context, h domain.ID, older int) (c2.TopicKeyHistory, error) {
	if h != s.topic {
		return c2.TopicKeyHistory{}, domain.ErrUnknownTopic
	}
	cp := func(k Key) c2.VersionedKey {
		return c2.VersionedKey{Version: k.Version, Key: append([]byte(nil), k.Key...)}
	}
	out := c2.TopicKeyHistory{Current: cp(s.f.keys.Current), Previous: cp(s.f.keys.Previous), Replaced: s.f.keys.Replaced}
	for i, k := range s.f.keys.Older {
		if i < older {
			out.Older = append(out.Older, cp(k))
		}
	}
	return out, nil
}

func (s *fakeService) Signer(id, h domain.ID) (c2.SignerInfo, bool) {
	sg, ok := s.f.signers[id]
	if !ok {
		return c2.SignerInfo{}, false
	}
	role := domain.RoleBoth
	if sg.Consumer {
		role = domain.RoleConsumer
	}
	return c2.SignerInfo{Client: id, SigningKey: sg.Public, Member: sg.Member && h == s.topic, Role: role}, true
}

func (s *fakeService) RecordFindings(_ context.Context, _ c2.Origin, fs []domain.MonitorFinding) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.findings = append(s.findings, fs...)
	return nil
}

func (s *fakeService) recorded() []domain.MonitorFinding {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]domain.MonitorFinding(nil), s.findings...)
}
