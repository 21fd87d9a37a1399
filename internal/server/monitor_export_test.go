package server

import (
	"context"
	"time"

	"github.com/e4c2/e4c2/monitor"
	"github.com/e4c2/e4c2/transport/mqtt"
)

// SubscribeSharedForTest runs the monitor subscription of an external
// broker for m over its own connection p, until ctx is done: a second
// member of the shared-subscription group, as another C2 instance would
// be. Exported, from a test file, for the tests of server_test.
func SubscribeSharedForTest(ctx context.Context, p *mqtt.Paho, m *monitor.Monitor, topics func() []string) {
	subscribeShared(ctx, p, m, topics, "", 50*time.Millisecond)
}
